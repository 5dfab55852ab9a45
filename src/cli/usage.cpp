// Every subcommand's usage text, in one place so that `ternion NAME --help` answers the
// same way for all of them (main.cpp) and the texts are easy to keep beside each other.
#include "cli/commands.h"

namespace ternion::cli {

const char* const kTrainUsage =
    "usage: ternion train --config FILE [--set KEY=VALUE]... [--resume auto|none|DIR]\n"
    "                     [--stop-at-step N]\n"
    "Trains the model that a YAML config describes (docs/config.md lists every key).\n"
    "  --config FILE         the run's config\n"
    "  --set KEY=VALUE       overrides one config key after the file (repeatable),\n"
    "                        e.g. --set optim.lr=1e-3 --set data.val=\n"
    "  --resume auto|none|DIR\n"
    "                        auto (default): continue from run.dir's latest complete\n"
    "                        checkpoint if there is one; none: start afresh; DIR: that\n"
    "                        checkpoint directory\n"
    "  --stop-at-step N      stop after the console's step N with a checkpoint committed\n"
    "Under mpirun or srun every rank runs the same command (docs/launching.md).\n";

const char* const kPrepareUsage =
    "usage: ternion prepare --input TXT --output FILE.h5 [--val-output FILE.h5]\n"
    "                       [--val-fraction F]\n"
    "Tokenizes a text file (one token per byte) into HDF5 token files.\n"
    "  --input TXT           the text\n"
    "  --output FILE.h5      the training tokens: the text's first tokens\n"
    "  --val-output FILE.h5  the validation tokens: the last F of the text\n"
    "                        (default: FILE_val.h5 beside --output)\n"
    "  --val-fraction F      in [0, 1) (default 0.1)\n";

const char* const kSampleUsage =
    "usage: ternion sample --checkpoint FILE.h5 [--prompt TEXT] [--tokens N] [--top-k K]\n"
    "                      [--temperature T] [--seed S]\n"
    "Generates text from trained weights: run.dir/model.h5, or a checkpoint exported with\n"
    "'ternion checkpoint export'.\n"
    "  --checkpoint FILE.h5  the weights (every value must be finite)\n"
    "  --prompt TEXT         the text to continue (default: a newline)\n"
    "  --tokens N            how many tokens to generate, > 0 (default 200)\n"
    "  --top-k K             sample among the K most likely tokens; 0 = greedy (default)\n"
    "  --temperature T       > 0: divides the logits when sampling with --top-k (default 1)\n"
    "  --seed S              seed of the sampling (default 1)\n";

const char* const kCheckpointUsage =
    "usage: ternion checkpoint inspect DIR\n"
    "       ternion checkpoint verify DIR\n"
    "       ternion checkpoint export DIR --output model.h5\n"
    "DIR is a checkpoint directory (run/checkpoints/step_00000100) or a run directory (its\n"
    "latest checkpoint is used).\n"
    "  inspect               prints the checkpoint's step, layout, files and tensors and\n"
    "                        verifies every checksum\n"
    "  verify                checks every dataset's checksum and that every tensor is\n"
    "                        covered exactly (and agrees where copies overlap); reports\n"
    "                        every problem, naming the file and tensor; exit 0 only if none\n"
    "  export --output FILE  writes the parameters, whole, as weights for 'ternion sample'\n";

const char* const kPlotUsage =
    "usage: ternion plot RUN_DIR [--output DIR]\n"
    "Draws loss.png (train and validation), throughput.png and lr.png from RUN_DIR/metrics.jsonl\n"
    "into DIR (default RUN_DIR/plots) with gnuplot. A truncated last line (a run killed while\n"
    "writing it) is skipped with a warning.\n";

const char* const kPlanUsage =
    "usage: ternion plan --config FILE --world N [--device-memory SIZE] [--search [--top K]]\n"
    "                    [--set key=value]... [--json] [--device-tflops F] [--efficiency E]\n"
    "                    [--intra-node-gbps B] [--inter-node-gbps B] [--gpus-per-node G]\n"
    "Per rank of the config's layout at N ranks: bytes of parameters, gradients, AdamW state,\n"
    "activations, the gradient sync's buffers, the allocator's slack and the peak (memory.json's\n"
    "fields), bytes sent per step on dp, tp and pp (metrics.jsonl's comm_bytes) and an estimated\n"
    "step time, computed without allocating or starting anything. --device-memory (80GiB, 80GB)\n"
    "says whether the largest peak fits; --search ranks every layout of N ranks that fits it\n"
    "(dp x tp x pp, ZeRO stage, recompute mode, schedule, micro-batch size) by estimated step\n"
    "time, the assumptions printed (docs/planning.md). --json prints memory.json's field names.\n";

const char* const kVersionUsage =
    "usage: ternion version   (or ternion --version)\n"
    "Prints the versions of Ternion and of the libraries it was built with.\n";

const char* const kSelftestUsage =
    "usage: ternion selftest\n"
    "Runs a tiny forward/backward on the CPU backend and reports its timing.\n";

}  // namespace ternion::cli
