// evaluate(): train a network briefly on a task and measure it. Plain structs in and out, no
// LibTorch in this header, so search/ and cluster/ can call it without seeing LibTorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "evaluator/tasks.h"
#include "genome/model_spec.h"

namespace starsynth {

enum class EvalStatus { Ok, Diverged, OutOfMemory, Timeout, Error };
std::string status_name(EvalStatus s);

struct TaskSpec {
  // "mad" (the six MAD tasks), "mad:<task>" (one of mad_task_names()), "mqar", "lm:<file>".
  std::string kind = "mad";
  MadSettings mad;                 // difficulty overrides for the synthetic tasks
  int64_t lm_seq_len = 256;        // byte-level LM window, tokens
  double lm_holdout = 0.1;         // last fraction of the corpus held out for scoring
  int64_t lm_eval_tokens = 65536;  // held-out tokens scored
};

struct TrainSettings {
  int64_t steps = 200;        // per task; a token budget, when set, overrides it
  int64_t tokens = 0;         // training tokens per task (inputs scored or not)
  int64_t batch = 32;
  double lr = 1e-3;
  double min_lr_ratio = 0.1;  // cosine decays to lr · min_lr_ratio
  double warmup = 0.1;        // fraction of the steps
  double weight_decay = 0.1;
  double clip = 1.0;
  uint64_t seed = 12345;      // model initialisation, data and batch order
  std::string device = "cpu"; // "cpu", "cuda", "cuda:N"
  bool bf16 = true;           // autocast to bfloat16 on CUDA
  double timeout_s = 0;       // 0: none
  int64_t eval_batch = 128;
  int64_t context = 4096;     // context the cache figures are sized for, tokens
  int64_t element_bytes = 2;  // bytes per cached element
};

struct TaskQuality {
  std::string task;
  double accuracy = 0;  // synthetic tasks: fraction of scored test targets predicted exactly
  double loss = 0;      // held-out cross-entropy, nats per token (per byte for LM)
};

struct Metrics {
  EvalStatus status = EvalStatus::Ok;
  std::string message;
  std::vector<TaskQuality> tasks;
  std::string quality_name;     // "accuracy" (higher is better) or "loss_nats_per_byte" (lower)
  double quality = 0;           // mean accuracy over the tasks, or held-out nats per byte
  double perplexity = 0;        // LM only: exp(loss)
  int64_t params_total = 0;     // measured on the built model
  int64_t params_non_embedding = 0;
  int64_t cache_bytes = 0;          // analytic, at `context`
  int64_t cache_bytes_measured = 0; // from the decode path's state, extrapolated to `context`
  double flops_per_token = 0;
  double train_tokens_per_s = 0;
  int64_t peak_memory_bytes = 0;    // CUDA: allocator peak; CPU: process peak RSS
  double wall_s = 0;
  int64_t train_tokens = 0;
  int64_t steps = 0;
  uint64_t seed = 0;
  std::string device;
};

// Never throws for a failing model: NaN/Inf losses, out-of-memory, timeouts and exceptions become
// a status with a message (memory is released before returning).
Metrics evaluate(const ModelSpec& spec, const TaskSpec& task, const TrainSettings& settings);

// GPUs LibTorch can use here (0 without CUDA).
int cuda_device_count();

// The same, for a task already generated (tests and benchmarks reuse one).
Metrics evaluate_synthetic(const ModelSpec& spec, const SyntheticTask& task, const TrainSettings& settings);

}  // namespace starsynth
