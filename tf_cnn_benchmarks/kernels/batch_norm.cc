// Training batch norm for NHWC float32 on the CPU, with the ReLU that follows it fused in, forward and backward.
//
// Why: TensorFlow's CPU path runs a training batch norm as oneDNN's NHWC batch norm, which moves its tensors at about
// 60% of the bandwidth a plain add gets on the hosts we measured, and has no fused batch-norm + ReLU gradient, so the
// ReLU's gradient is one more pass over memory. On a 2-core host those passes are about a seventh of a ResNet-50
// training step. Here the forward pass is two passes (the statistics, then normalize + ReLU) and the backward pass
// is two (the two per-channel sums, then the input gradient), with the ReLU's mask recomputed from x rather than
// read back from memory. A residual block's last batch norm, whose output is added to the block's shortcut and
// then goes through a ReLU, runs with both in its normalize pass, relu(bn(x) + side), where the add and the ReLU
// would each be one more pass over memory; its gradient op adds the gradients of the output's readers (each reads
// its own copy of the output) and applies the ReLU's mask in its first pass, where TensorFlow's AddN and ReluGrad
// would each be a pass of their own. Same arithmetic as TensorFlow's FusedBatchNormV3 in training mode (biased
// variance to normalize, the Bessel-corrected one returned for the moving average); only the order of the sums
// differs.
//
// Outputs take an input's buffer where TensorFlow can hand it over (the input has no reader left): each element is
// read before it is written, and writing into memory just read saves the read a fresh buffer's first write costs.
//
// Parallel over blocks of rows (pixels) on TensorFlow's intra-op pool: each block keeps its own per-channel sums,
// so no two workers write the same memory, and the blocks are added in a fixed order (the result does not depend
// on which thread ran which block).

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;
namespace shape_inference = tensorflow::shape_inference;

// Both ops' shapes: output 0 is shaped like input `like` (channels last), every other output has one value per
// channel of it.
absl::Status LikeThenPerChannel(shape_inference::InferenceContext* c, int like) {
  c->set_output(0, c->input(like));
  const auto channels = c->Dim(c->input(like), -1);
  for (int i = 1; i < c->num_outputs(); ++i) c->set_output(i, c->Vector(channels));
  return absl::OkStatus();
}

REGISTER_OP("EngineBatchNormTrain")
    .Input("x: float")
    .Input("gamma: float")
    .Input("beta: float")
    .Output("y: float")
    .Output("mean: float")
    .Output("variance: float")
    .Output("inv_std: float")
    .Attr("epsilon: float")
    .Attr("relu: bool")
    .SetShapeFn([](shape_inference::InferenceContext* c) { return LikeThenPerChannel(c, 0); });

// relu(bn(x) + side): a residual block's last batch norm with the block's add and ReLU. `copies` more outputs are
// y again (the same buffer, no copy made): a block's output read by two layers, each reading its own, gets the
// two gradients separately, so its gradient op adds them in its first pass rather than TensorFlow adding them in
// one more pass over memory (AddN).
REGISTER_OP("EngineBatchNormAddReluTrain")
    .Input("x: float")
    .Input("side: float")
    .Input("gamma: float")
    .Input("beta: float")
    .Output("y: float")
    .Output("mean: float")
    .Output("variance: float")
    .Output("inv_std: float")
    .Output("y_copies: copies * float")
    .Attr("epsilon: float")
    .Attr("copies: int >= 0 = 0")
    .SetShapeFn([](shape_inference::InferenceContext* c) {
      TF_RETURN_IF_ERROR(LikeThenPerChannel(c, 0));
      for (int i = 4; i < c->num_outputs(); ++i) c->set_output(i, c->input(0));
      return absl::OkStatus();
    });

REGISTER_OP("EngineBatchNormTrainGrad")
    .Input("dy: float")
    .Input("x: float")
    .Input("gamma: float")
    .Input("beta: float")
    .Input("mean: float")
    .Input("inv_std: float")
    .Output("dx: float")
    .Output("dgamma: float")
    .Output("dbeta: float")
    .Attr("relu: bool")
    .SetShapeFn([](shape_inference::InferenceContext* c) { return LikeThenPerChannel(c, 1); });

// The gradient of relu(bn(x) + side) from the sum of dy (one gradient per reader of y): the ReLU's mask from y,
// the add's gradient to side (dside, the masked sum) written in the same pass as the batch norm's two sums.
REGISTER_OP("EngineBatchNormAddReluTrainGrad")
    .Input("dy: n * float")
    .Input("y: float")
    .Input("x: float")
    .Input("gamma: float")
    .Input("mean: float")
    .Input("inv_std: float")
    .Output("dx: float")
    .Output("dside: float")
    .Output("dgamma: float")
    .Output("dbeta: float")
    .Attr("n: int >= 1")
    .SetShapeFn([](shape_inference::InferenceContext* c) {
      c->set_output(0, c->input(c->num_inputs() - 4));
      c->set_output(1, c->input(c->num_inputs() - 4));
      const auto channels = c->Dim(c->input(c->num_inputs() - 4), -1);
      c->set_output(2, c->Vector(channels));
      c->set_output(3, c->Vector(channels));
      return absl::OkStatus();
    });

// How many row blocks: a few per thread, so an uneven split or a busy core costs little.
int64_t Blocks(OpKernelContext* ctx, int64_t rows) {
  const int64_t threads = ctx->device()->tensorflow_cpu_worker_threads()->num_threads;
  return std::max<int64_t>(1, std::min<int64_t>(rows, 4 * threads));
}

// fn(block, first row, end row) for every block, on the intra-op pool.
void ForBlocks(OpKernelContext* ctx, int64_t rows, int64_t blocks,
               const std::function<void(int64_t, int64_t, int64_t)>& fn) {
  auto* workers = ctx->device()->tensorflow_cpu_worker_threads();
  tensorflow::Shard(workers->num_threads, workers->workers, blocks, /*cost_per_unit=*/1 << 30,
                    [&](int64_t first, int64_t end) {
                      for (int64_t b = first; b < end; ++b) fn(b, rows * b / blocks, rows * (b + 1) / blocks);
                    });
}

// Two per-channel sums over the M rows of an [M, C] tensor: row(r, a1, a2) adds row r's terms into its block's two
// sum rows (float, C each). Each block sums its own rows; the blocks are then added in block order, in double (they
// are few), into t1 and t2.
template <typename Row>
void ChannelSums(OpKernelContext* ctx, int64_t M, int64_t C, const Row& row, std::vector<double>* t1,
                 std::vector<double>* t2) {
  const int64_t B = Blocks(ctx, M);
  std::vector<float> s1(B * C, 0.f), s2(B * C, 0.f);
  ForBlocks(ctx, M, B, [&](int64_t b, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) row(r, &s1[b * C], &s2[b * C]);
  });
  t1->assign(C, 0.0);
  t2->assign(C, 0.0);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t c = 0; c < C; ++c) {
      (*t1)[c] += s1[b * C + c];
      (*t2)[c] += s2[b * C + c];
    }
  }
}

// x * scale + shift, written once so the forward pass and the backward pass's ReLU mask round the same way.
inline float Normalized(float x, float scale, float shift) { return std::fma(x, scale, shift); }

// One element's share of pass one's two per-channel sums of a batch norm's gradient (what InputGradient takes):
// g, and g * (x - mean).
inline void AddToSums(float g, float x, float mean, float& s1, float& s2) {
  s1 += g;
  s2 += g * (x - mean);
}

// Pass two of a batch norm's gradient, from pass one's per-channel sums t1 = sum(g) and t2 = sum(g * (x - mean)):
// dbeta, dgamma and dx = gamma * inv * (g - t1 / M - (x - mean) * inv^2 * t2 / M), g being dy, or dy where
// x * scale + shift > 0 when `scale` is given (the ReLU's mask, recomputed from x). dx may be dy's or x's buffer:
// each element is read before it is written.
void InputGradient(OpKernelContext* ctx, int64_t M, int64_t C, const float* dy, const float* x, const float* gamma,
                   const float* mean, const float* inv, const float* scale, const float* shift,
                   const std::vector<double>& t1, const std::vector<double>& t2, float* dx, float* dgamma,
                   float* dbeta) {
  std::vector<float> k0(C), k1(C), k2(C);
  for (int64_t c = 0; c < C; ++c) {
    dbeta[c] = static_cast<float>(t1[c]);
    dgamma[c] = static_cast<float>(t2[c] * inv[c]);
    k0[c] = gamma[c] * inv[c];
    k1[c] = static_cast<float>(t1[c] / M);
    k2[c] = static_cast<float>(t2[c] / M * inv[c] * inv[c]);
  }
  ForBlocks(ctx, M, Blocks(ctx, M), [&](int64_t, int64_t r0, int64_t r1) {
    const float* __restrict mn = mean;
    const float* __restrict q0 = k0.data();
    const float* __restrict q1 = k1.data();
    const float* __restrict q2 = k2.data();
    const float* __restrict sc = scale;
    const float* __restrict sh = shift;
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * C;
      const float* dr = dy + r * C;
      float* o = dx + r * C;
      if (sc != nullptr) {
        _Pragma("GCC ivdep") for (int64_t c = 0; c < C; ++c) {
          const float g = Normalized(xr[c], sc[c], sh[c]) > 0.f ? dr[c] : 0.f;
          o[c] = q0[c] * (g - q1[c] - (xr[c] - mn[c]) * q2[c]);
        }
      } else {
        _Pragma("GCC ivdep") for (int64_t c = 0; c < C; ++c) o[c] = q0[c] * (dr[c] - q1[c] - (xr[c] - mn[c]) * q2[c]);
      }
    }
  });
}

// EngineBatchNormTrain, and EngineBatchNormAddReluTrain (`side`: its second input, x's shape).
class BatchNormTrainOp : public OpKernel {
 public:
  explicit BatchNormTrainOp(OpKernelConstruction* c) : OpKernel(c), side_(c->num_inputs() == 4) {
    OP_REQUIRES_OK(c, c->GetAttr("epsilon", &epsilon_));
    if (!side_) OP_REQUIRES_OK(c, c->GetAttr("relu", &relu_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x_in = ctx->input(0);
    OP_REQUIRES(ctx, x_in.dims() >= 1 && x_in.NumElements() > 0,
                absl::InvalidArgumentError("batch norm: x must be a non-empty tensor, channels last"));
    OP_REQUIRES(ctx, !side_ || ctx->input(1).shape() == x_in.shape(),
                absl::InvalidArgumentError("batch norm + add: side must have x's shape"));
    const int64_t C = x_in.dim_size(x_in.dims() - 1), M = x_in.NumElements() / C;
    const int g = side_ ? 2 : 1;  // gamma's input
    OP_REQUIRES(ctx, ctx->input(g).NumElements() == C && ctx->input(g + 1).NumElements() == C,
                absl::InvalidArgumentError("batch norm: gamma and beta must have one value per channel"));
    const float* x = x_in.flat<float>().data();
    const float* side = side_ ? ctx->input(1).flat<float>().data() : nullptr;
    const float* gamma = ctx->input(g).flat<float>().data();
    const float* beta = ctx->input(g + 1).flat<float>().data();
    Tensor *y_out, *mean_out, *var_out, *inv_out;
    // side is read by nothing after this op where TensorFlow hands its buffer over: y then takes it.
    if (side_) {
      OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({1}, 0, x_in.shape(), &y_out));
    } else {
      OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x_in.shape(), &y_out));
    }
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({C}), &mean_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({C}), &var_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, TensorShape({C}), &inv_out));
    float* y = y_out->flat<float>().data();
    for (int i = 4; i < ctx->num_outputs(); ++i) ctx->set_output(i, *y_out);
    // Sums of (x - x's first row) and of its square: shifting by a sample of each channel keeps the float sums
    // away from the cancellation that sum(x^2) - sum(x)^2 / M suffers when the mean is large against the spread.
    std::vector<double> t1, t2;
    ChannelSums(
        ctx, M, C,
        [&](int64_t r, float* __restrict a1, float* __restrict a2) {
          const float* __restrict x0 = x;
          const float* __restrict xr = x + r * C;
          _Pragma("GCC ivdep") for (int64_t c = 0; c < C; ++c) {
            const float d = xr[c] - x0[c];
            a1[c] += d;
            a2[c] += d * d;
          }
        },
        &t1, &t2);
    std::vector<float> scale(C), shift(C);
    float* mean = mean_out->flat<float>().data();
    float* var = var_out->flat<float>().data();
    float* inv = inv_out->flat<float>().data();
    for (int64_t c = 0; c < C; ++c) {
      const double m = t1[c] / M, v = std::max(0.0, t2[c] / M - m * m);
      mean[c] = static_cast<float>(m + x[c]);
      inv[c] = static_cast<float>(1.0 / std::sqrt(v + epsilon_));
      var[c] = static_cast<float>(M > 1 ? v * M / (M - 1) : v);
      scale[c] = gamma[c] * inv[c];
      shift[c] = beta[c] - mean[c] * scale[c];
    }
    const float* __restrict sc = scale.data();
    const float* __restrict sh = shift.data();
    const bool relu = relu_;
    ForBlocks(ctx, M, Blocks(ctx, M), [&](int64_t, int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* __restrict xr = x + r * C;
        float* yr = y + r * C;  // may be side's buffer
        if (side != nullptr) {
          const float* sr = side + r * C;
          _Pragma("GCC ivdep") for (int64_t c = 0; c < C; ++c) {
            yr[c] = std::max(Normalized(xr[c], sc[c], sh[c]) + sr[c], 0.f);
          }
        } else if (relu) {
          _Pragma("GCC ivdep") for (int64_t c = 0; c < C; ++c) yr[c] = std::max(Normalized(xr[c], sc[c], sh[c]), 0.f);
        } else {
          _Pragma("GCC ivdep") for (int64_t c = 0; c < C; ++c) yr[c] = Normalized(xr[c], sc[c], sh[c]);
        }
      }
    });
  }

 private:
  const bool side_;
  float epsilon_;
  bool relu_ = false;  // with side: the ReLU is always there, after the add
};

class BatchNormTrainGradOp : public OpKernel {
 public:
  explicit BatchNormTrainGradOp(OpKernelConstruction* c) : OpKernel(c) { OP_REQUIRES_OK(c, c->GetAttr("relu", &relu_)); }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& dy_in = ctx->input(0);
    const Tensor& x_in = ctx->input(1);
    OP_REQUIRES(ctx, dy_in.shape() == x_in.shape() && x_in.NumElements() > 0,
                absl::InvalidArgumentError("batch norm gradient: dy and x must have one non-empty shape"));
    const int64_t C = x_in.dim_size(x_in.dims() - 1), M = x_in.NumElements() / C;
    for (int i = 2; i < 6; ++i) {
      OP_REQUIRES(ctx, ctx->input(i).NumElements() == C,
                  absl::InvalidArgumentError("batch norm gradient: one value per channel expected"));
    }
    const float* dy = dy_in.flat<float>().data();
    const float* x = x_in.flat<float>().data();
    const float* gamma = ctx->input(2).flat<float>().data();
    const float* beta = ctx->input(3).flat<float>().data();
    const float* mean = ctx->input(4).flat<float>().data();
    const float* inv = ctx->input(5).flat<float>().data();
    Tensor *dx_out, *dgamma_out, *dbeta_out;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({0, 1}, 0, x_in.shape(), &dx_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({C}), &dgamma_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({C}), &dbeta_out));
    std::vector<float> scale(C), shift(C);
    for (int64_t c = 0; c < C; ++c) {
      scale[c] = gamma[c] * inv[c];
      shift[c] = beta[c] - mean[c] * scale[c];
    }
    const float* __restrict sc = scale.data();
    const float* __restrict sh = shift.data();
    const bool relu = relu_;
    // Per channel: the sum of g and of g * (x - mean), g being dy where the ReLU let the value through.
    std::vector<double> t1, t2;
    ChannelSums(
        ctx, M, C,
        [&](int64_t r, float* __restrict a1, float* __restrict a2) {
          const float* __restrict mn = mean;
          const float* __restrict xr = x + r * C;
          const float* __restrict dr = dy + r * C;
          if (relu) {
            _Pragma("GCC ivdep") for (int64_t c = 0; c < C; ++c) {
              const float g = Normalized(xr[c], sc[c], sh[c]) > 0.f ? dr[c] : 0.f;
              AddToSums(g, xr[c], mn[c], a1[c], a2[c]);
            }
          } else {
            _Pragma("GCC ivdep") for (int64_t c = 0; c < C; ++c) AddToSums(dr[c], xr[c], mn[c], a1[c], a2[c]);
          }
        },
        &t1, &t2);
    InputGradient(ctx, M, C, dy, x, gamma, mean, inv, relu ? sc : nullptr, sh, t1, t2, dx_out->flat<float>().data(),
                  dgamma_out->flat<float>().data(), dbeta_out->flat<float>().data());
  }

 private:
  bool relu_;
};

// EngineBatchNormAddReluTrainGrad: pass one sums the upstream gradients, masks them by y > 0 (what TensorFlow's AddN
// and ReluGrad would each do in a pass of their own), writes that as dside and adds up the batch norm's two sums;
// pass two is the plain batch norm's input gradient from it.
class BatchNormAddReluTrainGradOp : public OpKernel {
 public:
  explicit BatchNormAddReluTrainGradOp(OpKernelConstruction* c) : OpKernel(c) {}

  void Compute(OpKernelContext* ctx) override {
    const int n = ctx->num_inputs() - 5;
    const Tensor& y_in = ctx->input(n);
    const Tensor& x_in = ctx->input(n + 1);
    OP_REQUIRES(ctx, x_in.dims() >= 1 && x_in.NumElements() > 0,
                absl::InvalidArgumentError("batch norm + add gradient: x must be a non-empty tensor, channels last"));
    for (int i = 0; i <= n; ++i) {
      OP_REQUIRES(ctx, ctx->input(i).shape() == x_in.shape(),
                  absl::InvalidArgumentError("batch norm + add gradient: each dy, y and x must have one shape"));
    }
    const int64_t C = x_in.dim_size(x_in.dims() - 1), M = x_in.NumElements() / C;
    for (int i = n + 2; i < n + 5; ++i) {
      OP_REQUIRES(ctx, ctx->input(i).NumElements() == C,
                  absl::InvalidArgumentError("batch norm + add gradient: one value per channel expected"));
    }
    std::vector<const float*> dys(n);
    for (int i = 0; i < n; ++i) dys[i] = ctx->input(i).flat<float>().data();
    const float* y = y_in.flat<float>().data();
    const float* x = x_in.flat<float>().data();
    const float* gamma = ctx->input(n + 2).flat<float>().data();
    const float* mean = ctx->input(n + 3).flat<float>().data();
    const float* inv = ctx->input(n + 4).flat<float>().data();
    Tensor *dx_out, *dside_out, *dgamma_out, *dbeta_out;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({n + 1}, 0, x_in.shape(), &dx_out));
    std::vector<int> upstream(n);
    for (int i = 0; i < n; ++i) upstream[i] = i;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output(upstream, 1, x_in.shape(), &dside_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({C}), &dgamma_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, TensorShape({C}), &dbeta_out));
    float* g = dside_out->flat<float>().data();
    std::vector<double> t1, t2;
    ChannelSums(
        ctx, M, C,
        [&](int64_t r, float* __restrict a1, float* __restrict a2) {
          const float* __restrict mn = mean;
          const float* __restrict xr = x + r * C;
          const float* __restrict yr = y + r * C;
          const float* d0 = dys[0] + r * C;
          float* gr = g + r * C;
          if (n == 1) {
            _Pragma("GCC ivdep") for (int64_t c = 0; c < C; ++c) {
              const float v = yr[c] > 0.f ? d0[c] : 0.f;
              gr[c] = v;
              AddToSums(v, xr[c], mn[c], a1[c], a2[c]);
            }
          } else if (n == 2) {
            const float* d1 = dys[1] + r * C;
            _Pragma("GCC ivdep") for (int64_t c = 0; c < C; ++c) {
              const float v = yr[c] > 0.f ? d0[c] + d1[c] : 0.f;
              gr[c] = v;
              AddToSums(v, xr[c], mn[c], a1[c], a2[c]);
            }
          } else {
            for (int64_t c = 0; c < C; ++c) {
              float sum = d0[c];
              for (int i = 1; i < n; ++i) sum += dys[i][r * C + c];
              const float v = yr[c] > 0.f ? sum : 0.f;
              gr[c] = v;
              AddToSums(v, xr[c], mn[c], a1[c], a2[c]);
            }
          }
        },
        &t1, &t2);
    InputGradient(ctx, M, C, g, x, gamma, mean, inv, nullptr, nullptr, t1, t2, dx_out->flat<float>().data(),
                  dgamma_out->flat<float>().data(), dbeta_out->flat<float>().data());
  }
};

REGISTER_KERNEL_BUILDER(Name("EngineBatchNormTrain").Device(tensorflow::DEVICE_CPU), BatchNormTrainOp);
REGISTER_KERNEL_BUILDER(Name("EngineBatchNormAddReluTrain").Device(tensorflow::DEVICE_CPU), BatchNormTrainOp);
REGISTER_KERNEL_BUILDER(Name("EngineBatchNormTrainGrad").Device(tensorflow::DEVICE_CPU), BatchNormTrainGradOp);
REGISTER_KERNEL_BUILDER(Name("EngineBatchNormAddReluTrainGrad").Device(tensorflow::DEVICE_CPU),
                        BatchNormAddReluTrainGradOp);

}  // namespace
