// The single Catch2 main of xs_proxy_tests; test cases live in the test_*.cpp files.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
