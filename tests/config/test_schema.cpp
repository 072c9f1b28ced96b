// The schema drives the loader: for every key of every section, a good value loads and a value
// of the wrong type, out of range or not among the allowed ones is reported at its position
// with the message of its type; a key the schema does not know is an error in every section.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "config/loader.hpp"
#include "config/schema.hpp"

using namespace xs::config;
using schema::Type;

namespace {

// A complete file with one extra line in the named section; returns the errors and sets *line
// to that line's number.
std::vector<std::string> errors_with(std::string_view section, const std::string& extra, int* line) {
    const std::vector<std::pair<std::string_view, std::string>> parts = {
        {"proxy", "[proxy]\n"},
        {"listener", "[[listener]]\nname = \"c2s\"\nbind = \"127.0.0.1:0\"\n"},
        {"backend", "[[backend]]\nname = \"b\"\naddress = \"127.0.0.1:1\"\n"},
        {"route", "[[route]]\ndomains = [\"*\"]\nbackends = [\"b\"]\n"},
        {"certificate", "[[certificate]]\ncert = \"/nonexistent/c.crt\"\nkey = \"/nonexistent/c.key\"\n"
                        "domains = [\"x.example\"]\n"},
    };
    std::string text;
    for (const auto& [name, body] : parts) {
        text += body;
        if (name == section) {
            *line = 1 + static_cast<int>(std::count(text.begin(), text.end(), '\n'));
            text += extra + "\n";
        }
    }
    std::vector<std::string> out;
    for (const auto& e : load_config_string(text, "t.toml").errors) out.push_back(e.to_string());
    return out;
}

bool has(const std::vector<std::string>& v, const std::string& needle) {
    for (const auto& s : v)
        if (s.find(needle) != std::string::npos) return true;
    return false;
}

std::string at(int line) { return "t.toml:" + std::to_string(line) + ":"; }

std::string num(double v) { return std::to_string(static_cast<long long>(v)); }

// A value the key accepts.
std::string good_value(const schema::KeyInfo& k) {
    switch (k.type) {
        case Type::Integer:
        case Type::Number: return num(k.min);  // max low_water would not be below high_water
        case Type::Boolean: return "true";
        case Type::Duration: return "\"1.5s\"";
        case Type::Enum: return "\"" + std::string(k.choices.back().text) + "\"";
        case Type::Strings:
            return k.choices.empty() ? "[]" : "[\"" + std::string(k.choices.front().text) + "\"]";
        case Type::ListenAddress: return "\"127.0.0.1:0\"";
        case Type::Address:
        case Type::HostPort: return "\"127.0.0.1:5222\"";
        case Type::String:
        case Type::Path: return "\"x\"";
        case Type::UrlPath: return "\"/x\"";
    }
    return "";
}

// Wrong values and the message each gets.
std::vector<std::pair<std::string, std::string>> bad_values(const schema::KeyInfo& k) {
    const std::string q = "'" + std::string(k.name) + "'";
    switch (k.type) {
        case Type::Integer: {
            std::string m = q + " must be an integer from " + num(k.min) + " to " + num(k.max);
            return {{num(k.max + 1), m}, {num(k.min - 1), m}, {"1.5", m}, {"\"1\"", m}, {"true", m}};
        }
        case Type::Number: {
            std::string m = q + " must be a number from " + num(k.min) + " to " + num(k.max);
            return {{num(k.max + 1), m}, {num(k.min - 1), m}, {"nan", m}, {"\"1\"", m}};
        }
        case Type::Boolean: return {{"1", q + " must be true or false"}};
        case Type::Duration: {
            std::vector<std::pair<std::string, std::string>> v = {
                {"10", q + ": expected a duration string such as \"10s\""},
                {"\"10\"", q + ": duration needs a unit"}};
            if (!k.zero_ok) v.push_back({"\"0s\"", q + ": must be greater than zero"});
            return v;
        }
        case Type::Enum: return {{"\"bogus\"", q + " must be \""}, {"1", q + " must be a string"}};
        case Type::Strings: return {{"\"x\"", q + " must be an array of strings"}, {"[1]", q + " must contain only strings"}};
        case Type::ListenAddress:
        case Type::Address: return {{"\"nocolon\"", "expected \"HOST:PORT\""}, {"1", q + " must be a string"}};
        case Type::HostPort: return {{"\"a:b\"", q + ": expected a port number"}};
        case Type::String:
        case Type::Path: return {{"1", q + " must be a string"}};
        case Type::UrlPath:
            return {{"\"x\"", q + " must be an absolute path"}, {"\"/a b\"", q + " must be an absolute path"},
                    {"1", q + " must be a string"}};
    }
    return {};
}

template <class S>
void check_section(const schema::Section<S>& section) {
    int line = 0;
    auto u = errors_with(section.name, "zz_unknown = 1", &line);
    CHECK(has(u, at(line) + "1: unknown key 'zz_unknown' in " + section.title()));
    for (const auto& key : section.keys) {
        const auto& k = key.info;
        INFO(section.title() << " " << k.name);
        // The base file already sets the required keys (and every key of [[certificate]]), and a
        // backend's `address`, which excludes `srv` (whose keys need it): those are checked
        // together by test_discovered.cpp; here only their wrong types.
        if (k.required || section.name == "certificate" || k.name == "address") continue;
        const bool needs_srv = section.name == "backend" && (k.name.substr(0, 3) == "srv" || k.name == "member_suffix");
        const std::string good = good_value(k);
        INFO("good value " << good);
        auto e = errors_with(section.name, std::string(k.name) + " = " + good, &line);
        if (!needs_srv) CHECK_FALSE(has(e, at(line)));
        if (k.type == Type::Enum)
            for (const auto& c : k.choices) {
                auto ce = errors_with(section.name, std::string(k.name) + " = \"" + std::string(c.text) + "\"", &line);
                CHECK_FALSE(has(ce, at(line)));
            }
        for (const auto& [value, message] : bad_values(k)) {
            INFO("bad value " << value);
            auto b = errors_with(section.name, std::string(k.name) + " = " + value, &line);
            CHECK(has(b, at(line)));
            CHECK(has(b, message));
        }
    }
}

}  // namespace

TEST_CASE("every key of the schema is read and checked as its type says", "[config][schema]") {
    check_section(schema::proxy_section());
    check_section(schema::listener_section());
    check_section(schema::backend_section());
    check_section(schema::route_section());
    check_section(schema::certificate_section());
}

TEST_CASE("the top level knows exactly the schema's sections", "[config][schema]") {
    CHECK(schema::section_names() ==
          std::vector<std::string_view>{"proxy", "listener", "backend", "route", "certificate"});
    std::vector<std::string> e;
    for (const auto& x : load_config_string("\n[nosuch]\n", "t.toml").errors) e.push_back(x.to_string());
    CHECK(has(e, "t.toml:2:2: unknown key 'nosuch'"));
}

TEST_CASE("a missing required key is reported with its section", "[config][schema]") {
    auto r = load_config_string("[[listener]]\nbind = \"127.0.0.1:0\"\n[[certificate]]\n", "t.toml");
    std::vector<std::string> e;
    for (const auto& x : r.errors) e.push_back(x.to_string());
    INFO(Catch::Detail::stringify(e));
    CHECK(has(e, "[[listener]] needs 'name'"));
    CHECK(has(e, "[[certificate]] needs 'cert'"));
    CHECK(has(e, "[[certificate]] needs 'key'"));
    CHECK(has(e, "[[certificate]] needs 'domains'"));
}

TEST_CASE("defaults come from the structs and keys are unique per section", "[config][schema]") {
    auto r = load_config_string(
        "[[listener]]\nname = \"c2s\"\nbind = \"127.0.0.1:0\"\n[[backend]]\nname = \"b\"\n"
        "address = \"127.0.0.1:1\"\n[[route]]\ndomains = [\"*\"]\nbackends = [\"b\"]\n",
        "t.toml");
    REQUIRE(r.errors.empty());
    const ProxySettings defaults;
    CHECK(r.config->proxy.max_header_bytes == defaults.max_header_bytes);
    CHECK(r.config->listeners[0].namespaces ==
          std::vector<std::string>{"jabber:client", "jabber:component:accept"});
    auto unique = [](const auto& section) {
        for (std::size_t i = 0; i < section.keys.size(); ++i)
            for (std::size_t j = i + 1; j < section.keys.size(); ++j)
                if (section.keys[i].info.name == section.keys[j].info.name) return false;
        return true;
    };
    CHECK(unique(schema::proxy_section()));
    CHECK(unique(schema::listener_section()));
    CHECK(unique(schema::backend_section()));
    CHECK(unique(schema::route_section()));
    CHECK(unique(schema::certificate_section()));
}
