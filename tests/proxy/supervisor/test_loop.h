// Helpers for supervisor tests, under the names they use: the shared TestLoop and test files.
#pragma once

#include "tests/proxy/net/loop_test_support.h"
#include "tests/proxy/test_files.h"

namespace stickyproxy::test {

using testing::TestLoop;
using testing::fileExists;
using testing::readFile;
using testing::TempDir;

}  // namespace stickyproxy::test
