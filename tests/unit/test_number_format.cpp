// format_number: the one way caulk writes a number for a person.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "caulk/number_format.hpp"

using caulk::format_number;

TEST(NumberFormat, SpecialValuesAndWholeNumbersReadAsAPersonWritesThem) {
  EXPECT_EQ(format_number(std::numeric_limits<double>::quiet_NaN()), "nan");
  EXPECT_EQ(format_number(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(format_number(-std::numeric_limits<double>::infinity()), "-inf");
  EXPECT_EQ(format_number(0.0), "0");
  EXPECT_EQ(format_number(1000.0, 2), "1000") << "never 1e+03";
  EXPECT_EQ(format_number(-123456.0, 4), "-123456");
  EXPECT_EQ(format_number(1e15, 4), "1e+15") << "from 1e15 on, as %g";
}

TEST(NumberFormat, FractionsTakeTheAskedDigitsOrTheShortestExactText) {
  EXPECT_EQ(format_number(0.1 + 0.2), "0.30000000000000004") << "shortest text that reads back as the same double";
  EXPECT_EQ(format_number(0.5), "0.5");
  EXPECT_EQ(format_number(1e-12), "1e-12");
  EXPECT_EQ(format_number(2.0 / 3.0, 4), "0.6667");
  EXPECT_EQ(format_number(12345.678, 4), "1.235e+04");
  EXPECT_EQ(format_number(-0.000123456, 2), "-0.00012");
  const double third = 1.0 / 3.0;
  EXPECT_EQ(std::stod(format_number(third)), third);
}
