# Sourced by scripts/test.sh: the system packages the tests use, installed where they are missing.
#   jekyll, chromium                     tests/test_pages.py builds the pages site and loads it in a headless browser
#   libtcmalloc-minimal4, libjemalloc2   tests/test_allocator.py preloads each into the engine (the allocator axis)
#   g++                                  tests/test_kernels.py builds the engine's batch-norm kernel
# Why here and not only in CI: the README's test command is the whole set-up on a fresh machine, so a new user's run
# tests what CI tests. apt-get runs as root, or through sudo where sudo asks no password. Elsewhere (no apt-get, no
# rights, or CPUBENCH_NO_SYSTEM_INSTALL=1) one line names what is missing and the command that installs it, and the
# tests that need those packages are skipped with that reason; the rest of the suite runs.
_cpubench_missing=()
command -v jekyll >/dev/null 2>&1 || _cpubench_missing+=(jekyll)
command -v chromium >/dev/null 2>&1 || _cpubench_missing+=(chromium)
command -v g++ >/dev/null 2>&1 || _cpubench_missing+=(g++)
# The loader's cache, not a fixed folder: the multiarch directory differs between x86-64 and arm64.
_cpubench_libs="$(ldconfig -p 2>/dev/null || true)"
grep -q 'libtcmalloc_minimal\.so\.4 ' <<<"$_cpubench_libs" || _cpubench_missing+=(libtcmalloc-minimal4)
grep -q 'libjemalloc\.so\.2 ' <<<"$_cpubench_libs" || _cpubench_missing+=(libjemalloc2)
if [ ${#_cpubench_missing[@]} -gt 0 ]; then
  _cpubench_apt=()
  if [ "${CPUBENCH_NO_SYSTEM_INSTALL:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      _cpubench_apt=(env DEBIAN_FRONTEND=noninteractive)
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      _cpubench_apt=(sudo -n env DEBIAN_FRONTEND=noninteractive)
    fi
  fi
  if [ ${#_cpubench_apt[@]} -gt 0 ]; then
    echo "cpubench: installing the system packages the tests use: ${_cpubench_missing[*]}" >&2
    "${_cpubench_apt[@]}" apt-get update -qq >&2
    "${_cpubench_apt[@]}" apt-get install -y -qq "${_cpubench_missing[@]}" >/dev/null
  else
    echo "cpubench: missing ${_cpubench_missing[*]} (their tests are skipped): install them with" \
      "'sudo apt-get install ${_cpubench_missing[*]}'" >&2
  fi
fi
unset _cpubench_missing _cpubench_libs _cpubench_apt
