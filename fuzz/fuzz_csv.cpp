// CSV tables (RFC 4180 with a header): quoting, row lengths, and numbers in every field.
#include "caulk/io/csv.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto table = caulk::io::parse_csv(caulk::fuzz::as_text(data, size), "fuzz.csv");
    for (std::size_t r = 0; r < table.rows.size(); ++r)
      for (std::size_t c = 0; c < table.header.size(); ++c) {
        try {
          (void)table.number(r, c);
        } catch (const caulk::Error&) {
        }
      }
  } catch (const caulk::Error&) {
  }
  return 0;
}
