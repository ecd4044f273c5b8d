// The tuners' extra loss terms for models tuned through the model interface (TorchScript; the MLP
// keeps its own, tuners/algorithms): the same terms, on what forward() returns.
#pragma once
#include <memory>

#include "caulk/context.hpp"
#include "caulk/models/training.hpp"

namespace caulk::tuners {

// B-Tuning (docs/btuning.md): lambda ||M_s f(x) - teacher(x)||^2 on the features, M_s the
// student's LogME weights fitted on its training features before the first epoch (fixed) or every
// epoch (refit). `term` holds the teacher targets on the training split ("target", N x C) and
// the teachers' facts ("teachers"). Its report: teachers, lambda, tau, student_weights and
// distance_to_teachers (mean over the training samples after tuning).
std::unique_ptr<models::OutputTerm> btuning_output_term(const Json& term, const Params& p, const models::TrainingSamples& train);

// Distillation: alpha (T^2 KL(q || softmax(z / T)) - CE) on the logits z, beside the plain
// cross-entropy, so the loss is (1 - alpha) CE + alpha T^2 KL. `term` holds the soft targets on
// the training split ("soft", N x C) and the teachers' facts.
std::unique_ptr<models::OutputTerm> distill_output_term(const Json& term, const Params& p, const models::TrainingSamples& train);

}  // namespace caulk::tuners
