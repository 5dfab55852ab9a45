// Constants of the checkpoint format; FORMAT.md beside this file is the specification.
#pragma once

#include <cstdint>
#include <string_view>

namespace ternion::checkpoint {

inline constexpr std::string_view kFormatName = "ternion-checkpoint";
inline constexpr int64_t kFormatVersion = 1;
inline constexpr std::string_view kManifestFile = "manifest.yaml";
inline constexpr std::string_view kLatestFile = "latest";
inline constexpr std::string_view kTmpSuffix = ".tmp";
inline constexpr std::string_view kCheckpointsDir = "checkpoints";
inline constexpr std::string_view kParamPrefix = "param/";
inline constexpr std::string_view kExpAvgPrefix = "optim/exp_avg/";
inline constexpr std::string_view kExpAvgSqPrefix = "optim/exp_avg_sq/";

}  // namespace ternion::checkpoint
