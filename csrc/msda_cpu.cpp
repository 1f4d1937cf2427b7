// CPU kernels of multi-scale deformable attention (forward and backward), written from the
// definition in msda.h. Parallelised with at::parallel_for (OpenMP in PyTorch builds); the
// channel loops run over C contiguous elements and are left to the compiler to vectorise.
#include "msda.h"
#include "msda_footprint.h"

#include <ATen/Parallel.h>

#include <algorithm>

namespace msda {
namespace {

// Sampling points per parallel task at least: smaller problems (the decoder's handful of
// queries) run on the calling thread instead of paying for a parallel region.
constexpr int64_t kMinPointsPerTask = 4096;

int64_t grain_for(int64_t points_per_item) {
  return std::max<int64_t>(1, kMinPointsPerTask / std::max<int64_t>(1, points_per_item));
}

// out[c] += w * v[c] for c < n.
template <typename scalar_t>
inline void axpy(scalar_t* __restrict__ out, scalar_t w, const scalar_t* __restrict__ v,
                 int64_t n) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) out[c] += w * v[c];
}

// out[c] += w00*v00[c] + w01*v01[c] + w10*v10[c] + w11*v11[c] for c < n.
template <typename scalar_t>
inline void axpy4(scalar_t* __restrict__ out, scalar_t w00, const scalar_t* __restrict__ v00,
                  scalar_t w01, const scalar_t* __restrict__ v01, scalar_t w10,
                  const scalar_t* __restrict__ v10, scalar_t w11,
                  const scalar_t* __restrict__ v11, int64_t n) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) {
    out[c] += w00 * v00[c] + w01 * v01[c] + w10 * v10[c] + w11 * v11[c];
  }
}

template <typename scalar_t>
inline scalar_t dot(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b, int64_t n) {
  scalar_t s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t c = 0; c < n; ++c) s += a[c] * b[c];
  return s;
}

template <typename scalar_t>
void forward_impl(const scalar_t* value, const int64_t* shapes, const int64_t* starts,
                  const scalar_t* locations, const scalar_t* weights, scalar_t* out,
                  int64_t n_batch, int64_t n_value, int64_t n_heads, int64_t n_channels,
                  int64_t n_levels, int64_t n_points, int64_t n_queries) {
  const int64_t row_stride = n_heads * n_channels;  // distance between two pixels in value
  const int64_t lp = n_levels * n_points;
  const int64_t grain = grain_for(n_heads * lp);
  at::parallel_for(0, n_batch * n_queries, grain, [&](int64_t begin, int64_t end) {
    for (int64_t nq = begin; nq < end; ++nq) {
      const scalar_t* value_n = value + (nq / n_queries) * n_value * row_stride;
      for (int64_t h = 0; h < n_heads; ++h) {
        const int64_t nqh = nq * n_heads + h;
        scalar_t* out_row = out + nqh * n_channels;
        const scalar_t* loc = locations + nqh * lp * 2;
        const scalar_t* attn = weights + nqh * lp;
        for (int64_t l = 0; l < n_levels; ++l) {
          const int64_t height = shapes[2 * l];
          const int64_t width = shapes[2 * l + 1];
          const scalar_t* value_l = value_n + starts[l] * row_stride + h * n_channels;
          for (int64_t p = 0; p < n_points; ++p) {
            const int64_t k = l * n_points + p;
            Footprint<scalar_t> f;
            if (!footprint(loc[2 * k], loc[2 * k + 1], height, width, f)) continue;
            const scalar_t a = attn[k];
            const scalar_t w00 = a * (1 - f.ly) * (1 - f.lx);
            const scalar_t w01 = a * (1 - f.ly) * f.lx;
            const scalar_t w10 = a * f.ly * (1 - f.lx);
            const scalar_t w11 = a * f.ly * f.lx;
            const scalar_t* v00 = value_l + f.row0 * row_stride;
            const scalar_t* v10 = v00 + width * row_stride;
            if (f.x0_in && f.x1_in && f.y0_in && f.y1_in) {
              axpy4(out_row, w00, v00, w01, v00 + row_stride, w10, v10, w11, v10 + row_stride,
                    n_channels);
              continue;
            }
            if (f.y0_in && f.x0_in) axpy(out_row, w00, v00, n_channels);
            if (f.y0_in && f.x1_in) axpy(out_row, w01, v00 + row_stride, n_channels);
            if (f.y1_in && f.x0_in) axpy(out_row, w10, v10, n_channels);
            if (f.y1_in && f.x1_in) axpy(out_row, w11, v10 + row_stride, n_channels);
          }
        }
      }
    }
  });
}

// Work is split over (batch, head, level): every unit owns a disjoint slice of grad_value
// (its level's pixels of one head), so no atomics are needed.
template <typename scalar_t>
void backward_impl(const scalar_t* value, const int64_t* shapes, const int64_t* starts,
                   const scalar_t* locations, const scalar_t* weights, const scalar_t* grad_out,
                   scalar_t* grad_value, scalar_t* grad_locations, scalar_t* grad_weights,
                   int64_t n_batch, int64_t n_value, int64_t n_heads, int64_t n_channels,
                   int64_t n_levels, int64_t n_points, int64_t n_queries) {
  const int64_t row_stride = n_heads * n_channels;
  const int64_t lp = n_levels * n_points;
  const int64_t grain = grain_for(n_queries * n_points);
  at::parallel_for(0, n_batch * n_heads * n_levels, grain, [&](int64_t begin, int64_t end) {
    for (int64_t unit = begin; unit < end; ++unit) {
      const int64_t l = unit % n_levels;
      const int64_t h = (unit / n_levels) % n_heads;
      const int64_t n = unit / (n_levels * n_heads);
      const int64_t height = shapes[2 * l];
      const int64_t width = shapes[2 * l + 1];
      const int64_t level_offset = (n * n_value + starts[l]) * row_stride + h * n_channels;
      const scalar_t* value_l = value + level_offset;
      scalar_t* grad_value_l = grad_value + level_offset;
      for (int64_t q = 0; q < n_queries; ++q) {
        const int64_t nqh = (n * n_queries + q) * n_heads + h;
        const scalar_t* g = grad_out + nqh * n_channels;
        for (int64_t p = 0; p < n_points; ++p) {
          const int64_t k = nqh * lp + l * n_points + p;
          Footprint<scalar_t> f;
          if (!footprint(locations[2 * k], locations[2 * k + 1], height, width, f)) continue;
          const scalar_t a = weights[k];
          const scalar_t w00 = (1 - f.ly) * (1 - f.lx);
          const scalar_t w01 = (1 - f.ly) * f.lx;
          const scalar_t w10 = f.ly * (1 - f.lx);
          const scalar_t w11 = f.ly * f.lx;
          const int64_t off00 = f.row0 * row_stride;
          const int64_t off10 = off00 + width * row_stride;
          // d00..d11: <grad_out, corner value>; zero for corners outside the map.
          scalar_t d00 = 0, d01 = 0, d10 = 0, d11 = 0;
          if (f.y0_in && f.x0_in) {
            d00 = dot(g, value_l + off00, n_channels);
            axpy(grad_value_l + off00, a * w00, g, n_channels);
          }
          if (f.y0_in && f.x1_in) {
            d01 = dot(g, value_l + off00 + row_stride, n_channels);
            axpy(grad_value_l + off00 + row_stride, a * w01, g, n_channels);
          }
          if (f.y1_in && f.x0_in) {
            d10 = dot(g, value_l + off10, n_channels);
            axpy(grad_value_l + off10, a * w10, g, n_channels);
          }
          if (f.y1_in && f.x1_in) {
            d11 = dot(g, value_l + off10 + row_stride, n_channels);
            axpy(grad_value_l + off10 + row_stride, a * w11, g, n_channels);
          }
          grad_weights[k] = w00 * d00 + w01 * d01 + w10 * d10 + w11 * d11;
          grad_locations[2 * k] =
              a * static_cast<scalar_t>(width) * ((1 - f.ly) * (d01 - d00) + f.ly * (d11 - d10));
          grad_locations[2 * k + 1] =
              a * static_cast<scalar_t>(height) * ((1 - f.lx) * (d10 - d00) + f.lx * (d11 - d01));
        }
      }
    }
  });
}

}  // namespace

at::Tensor forward_cpu(const at::Tensor& value, const at::Tensor& spatial_shapes,
                       const at::Tensor& level_start_index, const at::Tensor& sampling_locations,
                       const at::Tensor& attention_weights) {
  check_inputs(value, spatial_shapes, level_start_index, sampling_locations, attention_weights);
  TORCH_CHECK(value.device().is_cpu(), "msda: forward_cpu needs CPU tensors");
  const int64_t n_batch = value.size(0), n_value = value.size(1), n_heads = value.size(2),
                n_channels = value.size(3);
  const int64_t n_queries = sampling_locations.size(1), n_levels = sampling_locations.size(3),
                n_points = sampling_locations.size(4);
  auto out = at::zeros({n_batch, n_queries, n_heads * n_channels}, value.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "msda_forward_cpu", [&] {
    forward_impl<scalar_t>(value.data_ptr<scalar_t>(), spatial_shapes.data_ptr<int64_t>(),
                           level_start_index.data_ptr<int64_t>(),
                           sampling_locations.data_ptr<scalar_t>(),
                           attention_weights.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
                           n_batch, n_value, n_heads, n_channels, n_levels, n_points, n_queries);
  });
  return out;
}

std::vector<at::Tensor> backward_cpu(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                     const at::Tensor& level_start_index,
                                     const at::Tensor& sampling_locations,
                                     const at::Tensor& attention_weights,
                                     const at::Tensor& grad_output) {
  check_inputs(value, spatial_shapes, level_start_index, sampling_locations, attention_weights);
  TORCH_CHECK(value.device().is_cpu(), "msda: backward_cpu needs CPU tensors");
  const int64_t n_batch = value.size(0), n_value = value.size(1), n_heads = value.size(2),
                n_channels = value.size(3);
  const int64_t n_queries = sampling_locations.size(1), n_levels = sampling_locations.size(3),
                n_points = sampling_locations.size(4);
  TORCH_CHECK(grad_output.is_contiguous() && grad_output.device() == value.device() &&
                  grad_output.scalar_type() == value.scalar_type(),
              "msda: grad_output must be contiguous, on value's device and of value's dtype");
  TORCH_CHECK(grad_output.sizes() == at::IntArrayRef({n_batch, n_queries, n_heads * n_channels}),
              "msda: grad_output has shape ", grad_output.sizes(), ", expected [N, Lq, H*C]");
  auto grad_value = at::zeros_like(value);
  auto grad_locations = at::zeros_like(sampling_locations);
  auto grad_weights = at::zeros_like(attention_weights);
  if (grad_output.numel() == 0 || attention_weights.numel() == 0) {
    return {grad_value, grad_locations, grad_weights};
  }
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "msda_backward_cpu", [&] {
    backward_impl<scalar_t>(
        value.data_ptr<scalar_t>(), spatial_shapes.data_ptr<int64_t>(),
        level_start_index.data_ptr<int64_t>(), sampling_locations.data_ptr<scalar_t>(),
        attention_weights.data_ptr<scalar_t>(), grad_output.data_ptr<scalar_t>(),
        grad_value.data_ptr<scalar_t>(), grad_locations.data_ptr<scalar_t>(),
        grad_weights.data_ptr<scalar_t>(), n_batch, n_value, n_heads, n_channels, n_levels,
        n_points, n_queries);
  });
  return {grad_value, grad_locations, grad_weights};
}

}  // namespace msda
