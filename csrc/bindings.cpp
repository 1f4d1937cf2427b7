// Python bindings of the multi-scale deformable attention kernels: referformer_core._C.
// forward/backward dispatch on the tensors' device to the CPU or (when compiled) CUDA kernel.
#include "msda.h"

#include <torch/extension.h>

namespace msda {

void check_inputs(const at::Tensor& value, const at::Tensor& spatial_shapes,
                  const at::Tensor& level_start_index, const at::Tensor& sampling_locations,
                  const at::Tensor& attention_weights) {
  TORCH_CHECK(value.dim() == 4, "msda: value must be [N, S, H, C], got ", value.sizes());
  TORCH_CHECK(sampling_locations.dim() == 6 && sampling_locations.size(5) == 2,
              "msda: sampling_locations must be [N, Lq, H, L, P, 2], got ",
              sampling_locations.sizes());
  TORCH_CHECK(attention_weights.dim() == 5,
              "msda: attention_weights must be [N, Lq, H, L, P], got ", attention_weights.sizes());
  TORCH_CHECK(spatial_shapes.dim() == 2 && spatial_shapes.size(1) == 2,
              "msda: spatial_shapes must be [L, 2], got ", spatial_shapes.sizes());
  const int64_t n_levels = spatial_shapes.size(0);
  TORCH_CHECK(level_start_index.dim() == 1 && level_start_index.size(0) == n_levels,
              "msda: level_start_index must be [L], got ", level_start_index.sizes());
  TORCH_CHECK(sampling_locations.size(0) == value.size(0) &&
                  sampling_locations.size(2) == value.size(2) &&
                  sampling_locations.size(3) == n_levels,
              "msda: sampling_locations ", sampling_locations.sizes(),
              " does not match value ", value.sizes(), " and L=", n_levels);
  TORCH_CHECK(attention_weights.sizes() == sampling_locations.sizes().slice(0, 5),
              "msda: attention_weights ", attention_weights.sizes(),
              " does not match sampling_locations ", sampling_locations.sizes());
  TORCH_CHECK(spatial_shapes.scalar_type() == at::kLong &&
                  level_start_index.scalar_type() == at::kLong,
              "msda: spatial_shapes and level_start_index must be int64");
  const at::ScalarType weight_type = attention_weights.scalar_type();
  TORCH_CHECK(sampling_locations.scalar_type() == weight_type &&
                  (weight_type == value.scalar_type() ||
                   (value.scalar_type() == at::kBFloat16 && weight_type == at::kFloat)),
              "msda: sampling_locations and attention_weights must share value's dtype, or be "
              "float32 with a bfloat16 value; got ",
              value.scalar_type(), ", ", sampling_locations.scalar_type(), ", ", weight_type);
  for (const at::Tensor* t : {&spatial_shapes, &level_start_index, &sampling_locations,
                              &attention_weights}) {
    TORCH_CHECK(t->device() == value.device(), "msda: all tensors must be on value's device ",
                value.device());
  }
  for (const at::Tensor* t : {&value, &spatial_shapes, &level_start_index, &sampling_locations,
                              &attention_weights}) {
    TORCH_CHECK(t->is_contiguous(), "msda: all tensors must be contiguous");
  }
  // The level tables index into value: check them on the host (a tiny copy for CUDA tensors).
  const at::Tensor shapes_host = spatial_shapes.cpu();
  const at::Tensor starts_host = level_start_index.cpu();
  const int64_t* shapes = shapes_host.data_ptr<int64_t>();
  const int64_t* starts = starts_host.data_ptr<int64_t>();
  int64_t total = 0;
  for (int64_t l = 0; l < n_levels; ++l) {
    TORCH_CHECK(shapes[2 * l] > 0 && shapes[2 * l + 1] > 0, "msda: level ", l,
                " has a non-positive spatial shape");
    TORCH_CHECK(starts[l] == total, "msda: level_start_index[", l, "] is ", starts[l],
                ", expected ", total);
    total += shapes[2 * l] * shapes[2 * l + 1];
  }
  TORCH_CHECK(total == value.size(1), "msda: spatial_shapes cover ", total,
              " positions but value has S=", value.size(1));
}

namespace {

#ifdef WITH_CUDA
// The CUDA kernel takes value, sampling_locations and attention_weights of one dtype only
// (check_inputs also admits float32 locations and weights with a bfloat16 value).
void check_one_dtype_for_cuda(const at::Tensor& value, const at::Tensor& attention_weights) {
  TORCH_CHECK(attention_weights.scalar_type() == value.scalar_type(),
              "msda: the CUDA kernel needs value, sampling_locations and attention_weights of one "
              "dtype; got ", value.scalar_type(), " and ", attention_weights.scalar_type());
}
#endif

at::Tensor forward(const at::Tensor& value, const at::Tensor& spatial_shapes,
                   const at::Tensor& level_start_index, const at::Tensor& sampling_locations,
                   const at::Tensor& attention_weights) {
  if (value.is_cuda()) {
#ifdef WITH_CUDA
    check_one_dtype_for_cuda(value, attention_weights);
    return forward_cuda(value, spatial_shapes, level_start_index, sampling_locations,
                        attention_weights);
#else
    TORCH_CHECK(false, "msda: this build of referformer_core._C has no CUDA kernel");
#endif
  }
  return forward_cpu(value, spatial_shapes, level_start_index, sampling_locations,
                     attention_weights);
}

std::vector<at::Tensor> backward(const at::Tensor& value, const at::Tensor& spatial_shapes,
                                 const at::Tensor& level_start_index,
                                 const at::Tensor& sampling_locations,
                                 const at::Tensor& attention_weights,
                                 const at::Tensor& grad_output) {
  if (value.is_cuda()) {
#ifdef WITH_CUDA
    check_one_dtype_for_cuda(value, attention_weights);
    return backward_cuda(value, spatial_shapes, level_start_index, sampling_locations,
                         attention_weights, grad_output);
#else
    TORCH_CHECK(false, "msda: this build of referformer_core._C has no CUDA kernel");
#endif
  }
  return backward_cpu(value, spatial_shapes, level_start_index, sampling_locations,
                      attention_weights, grad_output);
}

bool has_cuda() {
#ifdef WITH_CUDA
  return true;
#else
  return false;
#endif
}

// Names of the value dtypes the CPU kernel takes (torch.<name>); see msda_cpu.cpp.
std::vector<std::string> cpu_dtypes() { return {"float32", "float64", "bfloat16"}; }

}  // namespace
}  // namespace msda

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Multi-scale deformable attention kernels (CPU, and CUDA when compiled).";
  // The kernels touch no Python objects: let other Python threads run meanwhile.
  m.def("forward", &msda::forward, "MSDA forward -> [N, Lq, H*C]",
        py::call_guard<py::gil_scoped_release>());
  m.def("backward", &msda::backward,
        "MSDA backward -> [grad_value, grad_sampling_locations, grad_attention_weights]",
        py::call_guard<py::gil_scoped_release>());
  m.def("has_cuda", &msda::has_cuda, "Whether the CUDA kernels were compiled in");
  m.def("cpu_dtypes", &msda::cpu_dtypes,
        "Value dtypes of the CPU kernel (bfloat16 also with float32 locations and weights)");
}
