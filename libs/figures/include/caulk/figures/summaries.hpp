// Summary tables of the inputs of a run, for report.html and stdout: what a dataset holds per split
// and what each model of a hub gives, so a reader sees the data before the results.
#pragma once
#include "caulk/artifacts.hpp"

namespace caulk::figures {

// One row per split: rows, classes present (classification) or target columns (regression),
// model-input and covariate columns (empty when the split has none). Reads file headers only.
Table dataset_summary_table(const Dataset& data);

// One row per model and split: rows and feature columns, and source-class columns when the model
// gives source probabilities. Reads file headers only.
Table hub_summary_table(const Embeddings& hub);

}  // namespace caulk::figures
