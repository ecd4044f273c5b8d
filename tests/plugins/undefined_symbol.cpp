// A plugin that needs a symbol no library provides: dlopen (RTLD_NOW) must fail and say which.
#include "caulk/plugin.hpp"

extern "C" void caulk_test_symbol_that_nobody_defines();

CAULK_PLUGIN("undefined_symbol", "1.0", "needs a missing symbol") { caulk_test_symbol_that_nobody_defines(); }
