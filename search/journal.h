// The append-only journal of a run: one record per finished evaluation, length-delimited and
// checksummed, flushed and fsync'd as it completes. A record torn by a crash is detected on open
// and cut off; everything before it survives.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "proto/search.pb.h"

namespace starsynth {

class Journal {
 public:
  // Opens (creating) `path` for appending; `records` receives what it already holds. Throws
  // std::runtime_error naming the file when it cannot be opened or holds no journal.
  Journal(const std::string& path, std::vector<pb::JournalRecord>* records);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Thread-safe; returns once the record is on disk.
  void append(const pb::JournalRecord& record);
  // Bytes cut from the end on open (a torn last record), 0 when the file ended cleanly.
  int64_t dropped_bytes() const { return dropped_; }

  // Reads a journal without opening it for writing (earlier runs' journals).
  static std::vector<pb::JournalRecord> read(const std::string& path, int64_t* valid_bytes = nullptr);

 private:
  std::string path_;
  int fd_ = -1;
  int64_t dropped_ = 0;
  std::mutex mutex_;
};

uint32_t crc32(const void* data, size_t size);

}  // namespace starsynth
