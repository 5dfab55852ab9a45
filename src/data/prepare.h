// Offline data preparation: text file -> train/val HDF5 token files (byte tokenizer).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace ternion::data {

struct PrepareStats {
  int64_t input_bytes = 0;
  int64_t train_tokens = 0;
  int64_t val_tokens = 0;
};

// Called after each chunk with (bytes processed so far, total bytes of the input).
using ProgressCallback = std::function<void(int64_t bytes_done, int64_t bytes_total)>;

// Tokenizes `input_txt` with ByteTokenizer, reading `chunk_bytes` at a time, and writes the
// first tokens to `output_train` and the last floor(val_fraction * n) tokens to `output_val`
// (HDF5 token files, vocab_size 256, tokenizer "byte"; each written atomically).
// REQUIRES: 0 <= val_fraction < 1, chunk_bytes > 0, distinct output paths.
// Throws ternion::Error naming the file when the input is missing, unreadable or empty, or an
// output cannot be written (a full disk included); no output file is left half-written. An
// output that is the input (or a link to it) is refused, naming both, before anything is
// written.
PrepareStats prepare_text(const std::string& input_txt, const std::string& output_train,
                          const std::string& output_val, double val_fraction,
                          const ProgressCallback& progress = {},
                          int64_t chunk_bytes = int64_t{1} << 24);

}  // namespace ternion::data
