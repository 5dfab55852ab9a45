// Where a tensor's storage lives. CPU is always available; CUDA only in builds with the
// CUDA backend and on machines with a visible GPU (cuda_available() tells).
#pragma once

#include <cstdint>
#include <string>

namespace ternion {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device&) const = default;
  std::string str() const;
};

// True when this build has the CUDA backend and at least one GPU is visible.
bool cuda_available();
int cuda_device_count();

}  // namespace ternion
