// CUDA kernels of multi-scale deformable attention (forward and backward), written from the
// definition in msda.h. float32/float64/float16/bfloat16; accumulation in float (double for
// float64).
//
// Forward: one thread per output element (n, q, h, c); consecutive threads take consecutive
// channels, so the corner reads of a warp are contiguous.
// Backward: one warp per (n, q, h); lanes stride over the channels, scatter into grad_value
// with atomicAdd (into an accumulation-type buffer), and reduce the per-point dot products
// for the location and weight gradients with warp shuffles.
#include "msda.h"
#include "msda_footprint.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>

namespace msda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;
constexpr int64_t kMaxBlocks = 1 << 20;  // grid-stride loops cover the rest

int blocks_for(int64_t threads) {
  return static_cast<int>(std::min<int64_t>((threads + kThreads - 1) / kThreads, kMaxBlocks));
}

template <typename scalar_t>
__global__ void forward_kernel(const scalar_t* __restrict__ value,
                               const int64_t* __restrict__ shapes,
                               const int64_t* __restrict__ starts,
                               const scalar_t* __restrict__ locations,
                               const scalar_t* __restrict__ weights, scalar_t* __restrict__ out,
                               int64_t total, int64_t n_value, int64_t n_heads,
                               int64_t n_channels, int64_t n_levels, int64_t n_points,
                               int64_t n_queries) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t row_stride = n_heads * n_channels;
  const int64_t lp = n_levels * n_points;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t c = i % n_channels;
    const int64_t nqh = i / n_channels;
    const int64_t h = nqh % n_heads;
    const int64_t n = nqh / (n_heads * n_queries);
    const scalar_t* value_nh = value + n * n_value * row_stride + h * n_channels + c;
    const scalar_t* loc = locations + nqh * lp * 2;
    const scalar_t* attn = weights + nqh * lp;
    acc_t acc = 0;
    for (int64_t l = 0; l < n_levels; ++l) {
      const int64_t height = shapes[2 * l];
      const int64_t width = shapes[2 * l + 1];
      const scalar_t* value_l = value_nh + starts[l] * row_stride;
      for (int64_t p = 0; p < n_points; ++p) {
        const int64_t k = l * n_points + p;
        Footprint<acc_t> f;
        if (!footprint(static_cast<acc_t>(loc[2 * k]), static_cast<acc_t>(loc[2 * k + 1]), height,
                       width, f)) {
          continue;
        }
        const scalar_t* v00 = value_l + f.row0 * row_stride;
        const scalar_t* v10 = v00 + width * row_stride;
        acc_t sample = 0;
        if (f.y0_in && f.x0_in) sample += (1 - f.ly) * (1 - f.lx) * static_cast<acc_t>(v00[0]);
        if (f.y0_in && f.x1_in) sample += (1 - f.ly) * f.lx * static_cast<acc_t>(v00[row_stride]);
        if (f.y1_in && f.x0_in) sample += f.ly * (1 - f.lx) * static_cast<acc_t>(v10[0]);
        if (f.y1_in && f.x1_in) sample += f.ly * f.lx * static_cast<acc_t>(v10[row_stride]);
        acc += static_cast<acc_t>(attn[k]) * sample;
      }
    }
    out[i] = static_cast<scalar_t>(acc);
  }
}

template <typename acc_t>
__device__ __forceinline__ acc_t warp_sum(acc_t v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    v += __shfl_down_sync(0xffffffffu, v, offset);
  }
  return v;
}

template <typename scalar_t, typename acc_t>
__global__ void backward_kernel(const scalar_t* __restrict__ value,
                                const int64_t* __restrict__ shapes,
                                const int64_t* __restrict__ starts,
                                const scalar_t* __restrict__ locations,
                                const scalar_t* __restrict__ weights,
                                const scalar_t* __restrict__ grad_out,
                                acc_t* __restrict__ grad_value,
                                scalar_t* __restrict__ grad_locations,
                                scalar_t* __restrict__ grad_weights, int64_t n_rows,
                                int64_t n_value, int64_t n_heads, int64_t n_channels,
                                int64_t n_levels, int64_t n_points, int64_t n_queries) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row_stride = n_heads * n_channels;
  const int64_t lp = n_levels * n_points;
  const int64_t first = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / kWarp;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x / kWarp;
  // Every lane of a warp has the same row, so the loop bounds, the footprint branches and
  // the shuffles below are warp-uniform.
  for (int64_t nqh = first; nqh < n_rows; nqh += stride) {
    const int64_t h = nqh % n_heads;
    const int64_t n = nqh / (n_heads * n_queries);
    const scalar_t* g = grad_out + nqh * n_channels;
    const int64_t base_nh = n * n_value * row_stride + h * n_channels;
    for (int64_t l = 0; l < n_levels; ++l) {
      const int64_t height = shapes[2 * l];
      const int64_t width = shapes[2 * l + 1];
      const int64_t base_l = base_nh + starts[l] * row_stride;
      for (int64_t p = 0; p < n_points; ++p) {
        const int64_t k = nqh * lp + l * n_points + p;
        Footprint<acc_t> f;
        if (!footprint(static_cast<acc_t>(locations[2 * k]),
                       static_cast<acc_t>(locations[2 * k + 1]), height, width, f)) {
          continue;
        }
        const acc_t a = static_cast<acc_t>(weights[k]);
        const acc_t w00 = (1 - f.ly) * (1 - f.lx);
        const acc_t w01 = (1 - f.ly) * f.lx;
        const acc_t w10 = f.ly * (1 - f.lx);
        const acc_t w11 = f.ly * f.lx;
        const int64_t off00 = base_l + f.row0 * row_stride;
        const int64_t off01 = off00 + row_stride;
        const int64_t off10 = off00 + width * row_stride;
        const int64_t off11 = off10 + row_stride;
        acc_t d00 = 0, d01 = 0, d10 = 0, d11 = 0;  // <grad_out, corner value>, this lane's part
        for (int64_t c = lane; c < n_channels; c += kWarp) {
          const acc_t gc = static_cast<acc_t>(g[c]);
          if (f.y0_in && f.x0_in) {
            d00 += gc * static_cast<acc_t>(value[off00 + c]);
            atomicAdd(grad_value + off00 + c, a * w00 * gc);
          }
          if (f.y0_in && f.x1_in) {
            d01 += gc * static_cast<acc_t>(value[off01 + c]);
            atomicAdd(grad_value + off01 + c, a * w01 * gc);
          }
          if (f.y1_in && f.x0_in) {
            d10 += gc * static_cast<acc_t>(value[off10 + c]);
            atomicAdd(grad_value + off10 + c, a * w10 * gc);
          }
          if (f.y1_in && f.x1_in) {
            d11 += gc * static_cast<acc_t>(value[off11 + c]);
            atomicAdd(grad_value + off11 + c, a * w11 * gc);
          }
        }
        const acc_t grad_a = warp_sum(w00 * d00 + w01 * d01 + w10 * d10 + w11 * d11);
        const acc_t grad_x = warp_sum(a * static_cast<acc_t>(width) *
                                      ((1 - f.ly) * (d01 - d00) + f.ly * (d11 - d10)));
        const acc_t grad_y = warp_sum(a * static_cast<acc_t>(height) *
                                      ((1 - f.lx) * (d10 - d00) + f.lx * (d11 - d01)));
        if (lane == 0) {
          grad_weights[k] = static_cast<scalar_t>(grad_a);
          grad_locations[2 * k] = static_cast<scalar_t>(grad_x);
          grad_locations[2 * k + 1] = static_cast<scalar_t>(grad_y);
        }
      }
    }
  }
}

}  // namespace

at::Tensor forward_cuda(const at::Tensor& value, const at::Tensor& spatial_shapes,
                        const at::Tensor& level_start_index, const at::Tensor& sampling_locations,
                        const at::Tensor& attention_weights) {
  check_inputs(value, spatial_shapes, level_start_index, sampling_locations, attention_weights);
  TORCH_CHECK(value.is_cuda(), "msda: forward_cuda needs CUDA tensors");
  const c10::cuda::CUDAGuard guard(value.device());
  const int64_t n_batch = value.size(0), n_value = value.size(1), n_heads = value.size(2),
                n_channels = value.size(3);
  const int64_t n_queries = sampling_locations.size(1), n_levels = sampling_locations.size(3),
                n_points = sampling_locations.size(4);
  auto out = at::empty({n_batch, n_queries, n_heads * n_channels}, value.options());
  const int64_t total = out.numel();
  if (total == 0) return out;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::ScalarType::Half, at::ScalarType::BFloat16, value.scalar_type(), "msda_forward_cuda",
      [&] {
        forward_kernel<scalar_t><<<blocks_for(total), kThreads, 0, stream>>>(
            value.data_ptr<scalar_t>(), spatial_shapes.data_ptr<int64_t>(),
            level_start_index.data_ptr<int64_t>(), sampling_locations.data_ptr<scalar_t>(),
            attention_weights.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), total, n_value,
            n_heads, n_channels, n_levels, n_points, n_queries);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
  return out;
}

std::vector<at::Tensor> backward_cuda(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                      const at::Tensor& level_start_index,
                                      const at::Tensor& sampling_locations,
                                      const at::Tensor& attention_weights,
                                      const at::Tensor& grad_output) {
  check_inputs(value, spatial_shapes, level_start_index, sampling_locations, attention_weights);
  TORCH_CHECK(value.is_cuda(), "msda: backward_cuda needs CUDA tensors");
  const c10::cuda::CUDAGuard guard(value.device());
  const int64_t n_batch = value.size(0), n_value = value.size(1), n_heads = value.size(2),
                n_channels = value.size(3);
  const int64_t n_queries = sampling_locations.size(1), n_levels = sampling_locations.size(3),
                n_points = sampling_locations.size(4);
  TORCH_CHECK(grad_output.is_contiguous() && grad_output.device() == value.device() &&
                  grad_output.scalar_type() == value.scalar_type(),
              "msda: grad_output must be contiguous, on value's device and of value's dtype");
  TORCH_CHECK(grad_output.sizes() == at::IntArrayRef({n_batch, n_queries, n_heads * n_channels}),
              "msda: grad_output has shape ", grad_output.sizes(), ", expected [N, Lq, H*C]");
  const auto acc_type = at::toOpMathType(value.scalar_type());
  auto grad_value = at::zeros(value.sizes(), value.options().dtype(acc_type));
  auto grad_locations = at::zeros_like(sampling_locations);
  auto grad_weights = at::zeros_like(attention_weights);
  const int64_t n_rows = n_batch * n_queries * n_heads;
  if (n_rows > 0 && n_channels > 0 && n_levels > 0 && n_points > 0) {
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::ScalarType::Half, at::ScalarType::BFloat16, value.scalar_type(), "msda_backward_cuda",
        [&] {
          using acc_t = at::opmath_type<scalar_t>;
          backward_kernel<scalar_t, acc_t><<<blocks_for(n_rows * kWarp), kThreads, 0, stream>>>(
              value.data_ptr<scalar_t>(), spatial_shapes.data_ptr<int64_t>(),
              level_start_index.data_ptr<int64_t>(), sampling_locations.data_ptr<scalar_t>(),
              attention_weights.data_ptr<scalar_t>(), grad_output.data_ptr<scalar_t>(),
              grad_value.data_ptr<acc_t>(), grad_locations.data_ptr<scalar_t>(),
              grad_weights.data_ptr<scalar_t>(), n_rows, n_value, n_heads, n_channels, n_levels,
              n_points, n_queries);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
  }
  return {grad_value.to(value.scalar_type()), grad_locations, grad_weights};
}

}  // namespace msda
