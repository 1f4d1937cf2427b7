// Multi-scale deformable attention (MSDA): declarations shared by the CPU and CUDA kernels.
//
// Definition (per batch n, query q, head h, channel c):
//   out[n, q, h*C + c] = sum_{l, p} a[n, q, h, l, p] * bilinear(value level l, head h, channel c,
//                                                      at loc[n, q, h, l, p])
// with loc = (x, y) in [0, 1] mapped to pixel coordinates x * W_l - 0.5, y * H_l - 0.5
// (align_corners=False) and zero padding outside the map.
//
// Shapes: value [N, S, H, C], spatial_shapes [L, 2] (h, w) int64, level_start_index [L] int64,
// sampling_locations [N, Lq, H, L, P, 2], attention_weights [N, Lq, H, L, P]; output [N, Lq, H*C].
// sampling_locations and attention_weights share value's dtype, or are float32 with a bfloat16
// value (CPU kernel only); the output and grad_output have attention_weights' dtype.
// All tensors must be contiguous and on the same device; the Python wrapper validates them.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace msda {

at::Tensor forward_cpu(const at::Tensor& value, const at::Tensor& spatial_shapes,
                       const at::Tensor& level_start_index, const at::Tensor& sampling_locations,
                       const at::Tensor& attention_weights);

// Returns {grad_value, grad_sampling_locations, grad_attention_weights}.
std::vector<at::Tensor> backward_cpu(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                     const at::Tensor& level_start_index,
                                     const at::Tensor& sampling_locations,
                                     const at::Tensor& attention_weights,
                                     const at::Tensor& grad_output);

#ifdef WITH_CUDA
at::Tensor forward_cuda(const at::Tensor& value, const at::Tensor& spatial_shapes,
                        const at::Tensor& level_start_index, const at::Tensor& sampling_locations,
                        const at::Tensor& attention_weights);

std::vector<at::Tensor> backward_cuda(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                      const at::Tensor& level_start_index,
                                      const at::Tensor& sampling_locations,
                                      const at::Tensor& attention_weights,
                                      const at::Tensor& grad_output);
#endif

// Shape/dtype/device/contiguity checks shared by both back ends (a last guard against
// out-of-bounds reads; the Python wrapper gives friendlier messages first).
void check_inputs(const at::Tensor& value, const at::Tensor& spatial_shapes,
                  const at::Tensor& level_start_index, const at::Tensor& sampling_locations,
                  const at::Tensor& attention_weights);

}  // namespace msda
