// CPU kernels of multi-scale deformable attention (forward and backward), written from the
// definition in msda.h. Parallelised with at::parallel_for (OpenMP in PyTorch builds); the
// channel loops run over C contiguous elements and are left to the compiler to vectorise.
//
// Types: value of float32, float64 or bfloat16; sampling_locations and attention_weights of
// value's dtype, or float32 with a bfloat16 value (as under autocast). The output and
// grad_output have the dtype of attention_weights. Sums are accumulated in
// at::opmath_type<value dtype> (float for bfloat16), and rounded once at the end.
#include "msda.h"
#include "msda_footprint.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <type_traits>
#include <vector>

namespace msda {
namespace {

// Sampling points per parallel task at least: smaller problems (the decoder's handful of
// queries) run on the calling thread instead of paying for a parallel region.
constexpr int64_t kMinPointsPerTask = 4096;

int64_t grain_for(int64_t points_per_item) {
  return std::max<int64_t>(1, kMinPointsPerTask / std::max<int64_t>(1, points_per_item));
}

// out[c] += w * v[c] for c < n, in acc_t.
template <typename acc_t, typename in_t>
inline void axpy(acc_t* __restrict__ out, acc_t w, const in_t* __restrict__ v, int64_t n) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) out[c] += w * static_cast<acc_t>(v[c]);
}

// out[c] += w00*v00[c] + w01*v01[c] + w10*v10[c] + w11*v11[c] for c < n, in acc_t.
template <typename acc_t, typename in_t>
inline void axpy4(acc_t* __restrict__ out, acc_t w00, const in_t* __restrict__ v00, acc_t w01,
                  const in_t* __restrict__ v01, acc_t w10, const in_t* __restrict__ v10,
                  acc_t w11, const in_t* __restrict__ v11, int64_t n) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) {
    out[c] += w00 * static_cast<acc_t>(v00[c]) + w01 * static_cast<acc_t>(v01[c]) +
              w10 * static_cast<acc_t>(v10[c]) + w11 * static_cast<acc_t>(v11[c]);
  }
}

// sum_c a[c] * b[c] for c < n, in acc_t.
template <typename acc_t, typename in_t>
inline acc_t dot(const acc_t* __restrict__ a, const in_t* __restrict__ b, int64_t n) {
  acc_t s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t c = 0; c < n; ++c) s += a[c] * static_cast<acc_t>(b[c]);
  return s;
}

// The n elements at src as acc_t: src itself when it already is acc_t, else buf filled with them.
template <typename acc_t, typename in_t>
inline const acc_t* as_acc(const in_t* src, acc_t* buf, int64_t n) {
  if constexpr (std::is_same_v<in_t, acc_t>) {
    return src;
  } else {
#pragma omp simd
    for (int64_t c = 0; c < n; ++c) buf[c] = static_cast<acc_t>(src[c]);
    return buf;
  }
}

// value_t: value's element type; weight_t: that of locations, weights and the output.
template <typename value_t, typename weight_t>
void forward_impl(const value_t* value, const int64_t* shapes, const int64_t* starts,
                  const weight_t* locations, const weight_t* weights, weight_t* out,
                  int64_t n_batch, int64_t n_value, int64_t n_heads, int64_t n_channels,
                  int64_t n_levels, int64_t n_points, int64_t n_queries) {
  using acc_t = at::opmath_type<value_t>;
  // Rows are summed in place when the output is acc_t, else in a per-task row of acc_t.
  constexpr bool in_place = std::is_same_v<weight_t, acc_t>;
  const int64_t row_stride = n_heads * n_channels;  // distance between two pixels in value
  const int64_t lp = n_levels * n_points;
  const int64_t grain = grain_for(n_heads * lp);
  at::parallel_for(0, n_batch * n_queries, grain, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> row(in_place ? 0 : n_channels);
    for (int64_t nq = begin; nq < end; ++nq) {
      const value_t* value_n = value + (nq / n_queries) * n_value * row_stride;
      for (int64_t h = 0; h < n_heads; ++h) {
        const int64_t nqh = nq * n_heads + h;
        weight_t* out_row = out + nqh * n_channels;
        acc_t* acc;
        if constexpr (in_place) {
          acc = out_row;
        } else {
          std::fill(row.begin(), row.end(), acc_t(0));
          acc = row.data();
        }
        const weight_t* loc = locations + nqh * lp * 2;
        const weight_t* attn = weights + nqh * lp;
        for (int64_t l = 0; l < n_levels; ++l) {
          const int64_t height = shapes[2 * l];
          const int64_t width = shapes[2 * l + 1];
          const value_t* value_l = value_n + starts[l] * row_stride + h * n_channels;
          for (int64_t p = 0; p < n_points; ++p) {
            const int64_t k = l * n_points + p;
            Footprint<acc_t> f;
            if (!footprint(static_cast<acc_t>(loc[2 * k]), static_cast<acc_t>(loc[2 * k + 1]),
                           height, width, f)) {
              continue;
            }
            const acc_t a = static_cast<acc_t>(attn[k]);
            const acc_t w00 = a * (1 - f.ly) * (1 - f.lx);
            const acc_t w01 = a * (1 - f.ly) * f.lx;
            const acc_t w10 = a * f.ly * (1 - f.lx);
            const acc_t w11 = a * f.ly * f.lx;
            const value_t* v00 = value_l + f.row0 * row_stride;
            const value_t* v10 = v00 + width * row_stride;
            if (f.x0_in && f.x1_in && f.y0_in && f.y1_in) {
              axpy4(acc, w00, v00, w01, v00 + row_stride, w10, v10, w11, v10 + row_stride,
                    n_channels);
              continue;
            }
            if (f.y0_in && f.x0_in) axpy(acc, w00, v00, n_channels);
            if (f.y0_in && f.x1_in) axpy(acc, w01, v00 + row_stride, n_channels);
            if (f.y1_in && f.x0_in) axpy(acc, w10, v10, n_channels);
            if (f.y1_in && f.x1_in) axpy(acc, w11, v10 + row_stride, n_channels);
          }
        }
        if constexpr (!in_place) {
          for (int64_t c = 0; c < n_channels; ++c) out_row[c] = static_cast<weight_t>(acc[c]);
        }
      }
    }
  });
}

// Work is split over (batch, head, level): every unit owns a disjoint slice of grad_value
// (its level's pixels of one head), so no atomics are needed. grad_value is summed in acc_t.
template <typename value_t, typename weight_t>
void backward_impl(const value_t* value, const int64_t* shapes, const int64_t* starts,
                   const weight_t* locations, const weight_t* weights, const weight_t* grad_out,
                   at::opmath_type<value_t>* grad_value, weight_t* grad_locations,
                   weight_t* grad_weights, int64_t n_batch, int64_t n_value, int64_t n_heads,
                   int64_t n_channels, int64_t n_levels, int64_t n_points, int64_t n_queries) {
  using acc_t = at::opmath_type<value_t>;
  const int64_t row_stride = n_heads * n_channels;
  const int64_t lp = n_levels * n_points;
  const int64_t grain = grain_for(n_queries * n_points);
  at::parallel_for(0, n_batch * n_heads * n_levels, grain, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> g_buf(std::is_same_v<weight_t, acc_t> ? 0 : n_channels);
    for (int64_t unit = begin; unit < end; ++unit) {
      const int64_t l = unit % n_levels;
      const int64_t h = (unit / n_levels) % n_heads;
      const int64_t n = unit / (n_levels * n_heads);
      const int64_t height = shapes[2 * l];
      const int64_t width = shapes[2 * l + 1];
      const int64_t level_offset = (n * n_value + starts[l]) * row_stride + h * n_channels;
      const value_t* value_l = value + level_offset;
      acc_t* grad_value_l = grad_value + level_offset;
      for (int64_t q = 0; q < n_queries; ++q) {
        const int64_t nqh = (n * n_queries + q) * n_heads + h;
        const acc_t* g = as_acc(grad_out + nqh * n_channels, g_buf.data(), n_channels);
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
          const int64_t off00 = f.row0 * row_stride;
          const int64_t off10 = off00 + width * row_stride;
          // d00..d11: <grad_out, corner value>; zero for corners outside the map.
          acc_t d00 = 0, d01 = 0, d10 = 0, d11 = 0;
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
          grad_weights[k] = static_cast<weight_t>(w00 * d00 + w01 * d01 + w10 * d10 + w11 * d11);
          grad_locations[2 * k] = static_cast<weight_t>(
              a * static_cast<acc_t>(width) * ((1 - f.ly) * (d01 - d00) + f.ly * (d11 - d10)));
          grad_locations[2 * k + 1] = static_cast<weight_t>(
              a * static_cast<acc_t>(height) * ((1 - f.lx) * (d10 - d00) + f.lx * (d11 - d01)));
        }
      }
    }
  });
}

// Calls fn with value_t and weight_t set to the element types of (value, attention_weights):
// (float|double|BFloat16, same) or (BFloat16, float).
template <typename Fn>
void dispatch_types(const at::Tensor& value, const at::Tensor& attention_weights, const Fn& fn) {
  if (value.scalar_type() == at::kBFloat16 && attention_weights.scalar_type() == at::kFloat) {
    fn(c10::BFloat16(), float());
    return;
  }
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, value.scalar_type(), "msda_cpu",
                                 [&] { fn(scalar_t(), scalar_t()); });
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
  auto out = at::zeros({n_batch, n_queries, n_heads * n_channels}, attention_weights.options());
  if (out.numel() == 0) return out;
  dispatch_types(value, attention_weights, [&](auto v, auto w) {
    using value_t = decltype(v);
    using weight_t = decltype(w);
    forward_impl<value_t, weight_t>(
        value.data_ptr<value_t>(), spatial_shapes.data_ptr<int64_t>(),
        level_start_index.data_ptr<int64_t>(), sampling_locations.data_ptr<weight_t>(),
        attention_weights.data_ptr<weight_t>(), out.data_ptr<weight_t>(), n_batch, n_value,
        n_heads, n_channels, n_levels, n_points, n_queries);
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
                  grad_output.scalar_type() == attention_weights.scalar_type(),
              "msda: grad_output must be contiguous, on value's device and of the output's dtype ",
              attention_weights.scalar_type());
  TORCH_CHECK(grad_output.sizes() == at::IntArrayRef({n_batch, n_queries, n_heads * n_channels}),
              "msda: grad_output has shape ", grad_output.sizes(), ", expected [N, Lq, H*C]");
  auto grad_value = at::zeros(value.sizes(),
                              value.options().dtype(at::toOpMathType(value.scalar_type())));
  auto grad_locations = at::zeros_like(sampling_locations);
  auto grad_weights = at::zeros_like(attention_weights);
  if (grad_output.numel() > 0 && attention_weights.numel() > 0) {
    dispatch_types(value, attention_weights, [&](auto v, auto w) {
      using value_t = decltype(v);
      using weight_t = decltype(w);
      backward_impl<value_t, weight_t>(
          value.data_ptr<value_t>(), spatial_shapes.data_ptr<int64_t>(),
          level_start_index.data_ptr<int64_t>(), sampling_locations.data_ptr<weight_t>(),
          attention_weights.data_ptr<weight_t>(), grad_output.data_ptr<weight_t>(),
          grad_value.data_ptr<at::opmath_type<value_t>>(), grad_locations.data_ptr<weight_t>(),
          grad_weights.data_ptr<weight_t>(), n_batch, n_value, n_heads, n_channels, n_levels,
          n_points, n_queries);
    });
  }
  return {grad_value.to(value.scalar_type()), grad_locations, grad_weights};
}

}  // namespace msda
