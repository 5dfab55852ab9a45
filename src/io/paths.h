// Paths that a command reads and writes: an output must never overwrite what the command
// reads. Checked before anything is written.
#pragma once

#include <filesystem>
#include <string_view>
#include <vector>

namespace ternion::io {

// Throws ternion::Error("[op] refusing to write '<output>': it is the input '<input>'") (or
// "... it is inside the input directory '<input>'") when `output`, or the temporary file
// written beside it (tmp_path(output)), is one of `inputs` or lies inside an input that is
// a directory. Paths are compared after resolving symbolic links and `..` (weakly
// canonical, so outputs that do not exist yet are compared too), and existing files also
// by identity (a hard link to an input is that input). The messages name both paths as the
// caller gave them.
void refuse_output_over_inputs(const std::filesystem::path& output,
                               const std::vector<std::filesystem::path>& inputs, std::string_view op);

}  // namespace ternion::io
