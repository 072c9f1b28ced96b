// A check for fuzz targets: on failure print what went wrong (with the input, escaped) and
// abort(), which libFuzzer reports as a crash and saves the input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace xs::fuzz {

inline std::string printable(std::string_view s, std::size_t limit = 600) {
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7F && c != '\\') {
            out += static_cast<char>(c);
        } else {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
        }
    }
    if (s.size() > limit) out += "... (" + std::to_string(s.size()) + " bytes)";
    return out;
}

[[noreturn]] inline void fail(const char* file, int line, const char* expr, const std::string& why,
                              std::string_view input) {
    std::fprintf(stderr, "\n%s:%d: check failed: %s\n  %s\n  input: %s\n", file, line, expr,
                 why.c_str(), printable(input).c_str());
    std::abort();
}

}  // namespace xs::fuzz

#define XS_FUZZ_CHECK(cond, why, input)                                        \
    do {                                                                       \
        if (!(cond)) ::xs::fuzz::fail(__FILE__, __LINE__, #cond, (why), (input)); \
    } while (0)
