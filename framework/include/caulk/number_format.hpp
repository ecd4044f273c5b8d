// One way to write a number for a person (messages, parameter ranges, text tables), so the same
// value reads the same wherever caulk shows it.
#pragma once
#include <string>

namespace caulk {

// NaN as "nan", infinities as "inf" / "-inf", a whole number below 1e15 in full ("1000", never
// "1e+03"); anything else with `significant` significant digits ("%g"), or, when `significant` is
// 0, as the shortest text that reads back as the same double.
std::string format_number(double value, int significant = 0);

}  // namespace caulk
