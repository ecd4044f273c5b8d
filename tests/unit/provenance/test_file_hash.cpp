// Content hashes (caulk/file_hash.hpp) against xxHash's published test vectors, and the cache
// that hashes each file once.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>

#include "caulk/error.hpp"
#include "caulk/file_hash.hpp"
#include "temp_dir.hpp"

using namespace caulk;
using caulk::testing::TempDir;

namespace {

// xxHash's sanity buffer (xsum_sanity_check.c): byte i is the top byte of PRIME32 * PRIME64^i.
std::string sanity_buffer(std::size_t n) {
  std::string out(n, '\0');
  std::uint64_t generator = 2654435761ull;
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = static_cast<char>(generator >> 56);
    generator *= 11400714785074694797ull;
  }
  return out;
}

struct Vector {
  std::size_t length;
  const char* xxh3_128;  // canonical: high 64 bits, then low 64 bits, big-endian hex
};

// XXH3-128, seed 0, of the sanity buffer's first `length` bytes: xxHash's published values (its
// sanity check's XSUM_XXH128_testdata), covering every length class of the algorithm.
const Vector kVectors[] = {
    {0, "99aa06d3014798d86001c324468d497f"},    {1, "a6cd5e9392000f6ac44bdff4074eecdb"},    {6, "082afe0b8162d12a3e7039bdda43cfc6"},
    {12, "6e3efd8fc7802b18061a192713f69ad9"},   {24, "0ce966e4678d37611e7044d28b1b901d"},   {48, "a002ac4e5478227ef942219aed80f67b"},
    {81, "4952f58181ab00425e8bafb9f95fb803"},   {222, "337e09641b948717f1aebd597cec6b3a"},  {403, "1b6de21e332dd73dcdeb804d65c6dea4"},
    {512, "18d2d110dcc9bca1617e49599013cb6b"},  {2048, "f736557fd47073a5dd59e2c3a5f038e0"}, {2240, "ccb134fbfa7ce49d6e73a90539cf2948"},
    {2367, "e89c0f6ff369b427cb37aeb9e5d361ed"},
};

}  // namespace

TEST(FileHash, MatchesXxhashPublishedVectorsInMemoryAndFromFilesInAnyChunking) {
  TempDir dir;
  for (const auto& v : kVectors) {
    const std::string bytes = sanity_buffer(v.length);
    EXPECT_EQ(content_hash(bytes), v.xxh3_128) << v.length;
    const auto file = dir.write(std::string("v").append(std::to_string(v.length)), bytes);
    // Chunks that split the input at odd places, and one chunk for all of it.
    for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{1000}, std::size_t{1} << 20})
      EXPECT_EQ(hash_file(file, chunk), v.xxh3_128) << v.length << " bytes in chunks of " << chunk;
  }
}

TEST(FileHash, RefusesWhatIsNotARegularFileByName) {
  TempDir dir;
  EXPECT_THROW(hash_file(dir / "missing"), DataError);
  EXPECT_THROW(hash_file(dir.path()), DataError);
}

TEST(FileHashCache, HashesAFileOnceUntilItChanges) {
  TempDir dir;
  const auto file = dir.write("data", sanity_buffer(403));
  FileHashCache cache;
  EXPECT_EQ(cache.hash(file), "1b6de21e332dd73dcdeb804d65c6dea4");
  EXPECT_EQ(cache.hash(file), "1b6de21e332dd73dcdeb804d65c6dea4");
  EXPECT_EQ(cache.hashed_count(), 1u);
  // Same size, other content, a later modification time: hashed again.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  dir.write("data", sanity_buffer(404).substr(1));
  EXPECT_EQ(cache.hash(file), content_hash(sanity_buffer(404).substr(1)));
  EXPECT_EQ(cache.hashed_count(), 2u);
  EXPECT_EQ(cache.hash(dir / "missing"), std::nullopt);
}

TEST(FileHashCache, ASavedCacheIsTrustedOnlyForFilesOlderThanTheirHash) {
  TempDir dir;
  const auto old_file = dir.write("old", "old content");
  const auto fresh_file = dir.write("fresh", "fresh content");
  // An old modification time: a trusted entry. The fresh one could change within its clock tick.
  const auto old_time = std::filesystem::file_time_type::clock::now() - std::chrono::hours(1);
  std::filesystem::last_write_time(old_file, old_time);
  FileHashCache first;
  ASSERT_TRUE(first.hash(old_file));
  ASSERT_TRUE(first.hash(fresh_file));
  FileHashCache second;
  second.load_json_text(first.to_json_text());
  EXPECT_EQ(second.hash(old_file), content_hash("old content"));
  EXPECT_EQ(second.hashed_count(), 0u) << "the old file's hash comes from the saved cache";
  EXPECT_EQ(second.hash(fresh_file), content_hash("fresh content"));
  EXPECT_EQ(second.hashed_count(), 1u) << "a fresh file is hashed again";
  // The same size and modification time but another inode (replaced by a rename): hashed again.
  dir.write("other", "OLD CONTENT");
  std::filesystem::last_write_time(dir / "other", old_time);
  std::filesystem::rename(dir / "other", old_file);
  EXPECT_EQ(second.hash(old_file), content_hash("OLD CONTENT"));
  // A damaged cache is an empty one.
  FileHashCache third;
  third.load_json_text("{ not json");
  EXPECT_EQ(third.hash(old_file), content_hash("OLD CONTENT"));
  EXPECT_EQ(third.hashed_count(), 1u);
}

namespace {
// Sets a file's modification time to the given second and nanosecond.
void set_mtime(const std::filesystem::path& p, std::int64_t seconds, long nanoseconds) {
  const struct timespec times[2] = {{seconds, nanoseconds}, {seconds, nanoseconds}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), times, 0), 0);
}
std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

TEST(FileHashCache, AFileHashedWithinItsClockTickIsConfirmedOnceTheTickHasPassed) {
  TempDir dir;
  // Times up to 1.5 s ahead, so that each file is hashed within its tick whatever the clock says.
  const std::int64_t next_second = now_seconds() + 1;
  // Modification times with a fraction of a second (ext4, tmpfs): the tick is 100 ms at most.
  const auto fine = dir.write("fine", "fine content");
  set_mtime(fine, next_second, 500'000'000);
  // Whole seconds (FAT, ext3): two writes up to two seconds apart may have the same time.
  const auto coarse = dir.write("coarse", "coarse content");
  set_mtime(coarse, next_second, 0);
  // And one rewritten within its tick after it was hashed (same size, time and inode).
  const auto racy = dir.write("racy", "before");
  set_mtime(racy, next_second, 300'000'000);
  FileHashCache cache;
  ASSERT_TRUE(cache.hash(fine));
  ASSERT_TRUE(cache.hash(coarse));
  ASSERT_EQ(cache.hash(racy), content_hash("before"));
  dir.write("racy", "after!");
  set_mtime(racy, next_second, 300'000'000);
  // None is trusted yet, so none is saved.
  auto hashed_by_next_run = [&](const std::filesystem::path& p) {
    FileHashCache next;
    next.load_json_text(cache.to_json_text());
    EXPECT_TRUE(next.hash(p));
    return next.hashed_count();
  };
  EXPECT_EQ(hashed_by_next_run(fine), 1u);
  EXPECT_EQ(cache.confirm_settled(std::uintmax_t{1} << 20), 0u) << "within their ticks: not yet";
  std::this_thread::sleep_for(std::chrono::milliseconds(1700));  // past the fine ticks, within the coarse one
  EXPECT_EQ(cache.confirm_settled(4), 0u) << "none fits a budget of 4 bytes: left to the next run";
  EXPECT_EQ(hashed_by_next_run(fine), 1u);
  EXPECT_EQ(cache.confirm_settled(std::uintmax_t{1} << 20), 2u) << "the fine one and the racy one";
  EXPECT_EQ(hashed_by_next_run(fine), 0u) << "its confirmed hash is trusted";
  EXPECT_EQ(hashed_by_next_run(coarse), 1u) << "its two seconds have not passed";
  // What is confirmed is the content the racy file has now, read again, not the hash taken too soon.
  FileHashCache next;
  next.load_json_text(cache.to_json_text());
  EXPECT_EQ(next.hash(racy), content_hash("after!"));
  EXPECT_EQ(next.hashed_count(), 0u);
}
