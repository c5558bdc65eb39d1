// Catch2's main() for the integration tests (tests/integration/*_test.cpp).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
