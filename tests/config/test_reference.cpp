// docs/CONFIG.md holds, between its config-reference markers, exactly what
// `xmpp-shard-proxy --print-config-reference` prints (render_reference_markdown()). When this
// test fails, regenerate that part (one command line):
//   cmake -DBIN=build/bin/xmpp-shard-proxy -DDOC=docs/CONFIG.md -DUPDATE=ON
//         -P tests/config/check_reference.cmake
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include "config/reference.hpp"
#include "config/schema.hpp"

#ifndef XS_SOURCE_DIR
#error "XS_SOURCE_DIR must name the source tree"
#endif

using namespace xs::config;

namespace {

const std::string kBegin = "<!-- config-reference:begin -->\n";
const std::string kEnd = "<!-- config-reference:end -->";

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

}  // namespace

TEST_CASE("docs/CONFIG.md holds the generated reference between its markers", "[config][reference]") {
    const std::string doc = read_file(std::string(XS_SOURCE_DIR) + "/docs/CONFIG.md");
    REQUIRE_FALSE(doc.empty());
    const auto begin = doc.find(kBegin);
    REQUIRE(begin != std::string::npos);
    const auto from = begin + kBegin.size();
    const auto end = doc.find(kEnd, from);
    REQUIRE(end != std::string::npos);
    CHECK(doc.find(kBegin, end) == std::string::npos);  // one reference only
    const std::string in_doc = doc.substr(from, end - from);
    const std::string generated = render_reference_markdown();
    if (in_doc != generated) {
        auto a = lines(in_doc), b = lines(generated);
        std::size_t i = 0;
        while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
        INFO("docs/CONFIG.md is out of date; first difference at line " << i + 1
             << " of the reference:\n  doc:       " << (i < a.size() ? a[i] : "(end)")
             << "\n  generated: " << (i < b.size() ? b[i] : "(end)")
             << "\nregenerate: cmake -DBIN=build/bin/xmpp-shard-proxy -DDOC=docs/CONFIG.md "
                "-DUPDATE=ON -P tests/config/check_reference.cmake");
        CHECK(in_doc == generated);
    }
}

TEST_CASE("the reference has one row per key of every section", "[config][reference]") {
    const std::string md = render_reference_markdown();
    auto rows = [&](const auto& section) {
        CHECK(md.find("### `" + section.title() + "`\n") != std::string::npos);
        for (const auto& k : section.keys) {
            INFO(section.title() << " " << k.info.name);
            CHECK(md.find("| `" + std::string(k.info.name) + "` | ") != std::string::npos);
        }
    };
    rows(schema::proxy_section());
    rows(schema::listener_section());
    rows(schema::backend_section());
    rows(schema::route_section());
    rows(schema::certificate_section());
    CHECK(md.find("| `max_header_bytes` | integer | `4096` | 128 to 1048576 |") != std::string::npos);
    CHECK(md.find("| `log_format` | enum | `\"kv\"` | `\"kv\"`, `\"json\"` |") != std::string::npos);
    CHECK(md.back() == '\n');
}
