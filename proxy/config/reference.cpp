#include "config/reference.hpp"

#include <cmath>

#include "config/schema.hpp"

namespace xs::config {
namespace {

using schema::Type;

std::string code(std::string_view s) { return "`" + std::string(s) + "`"; }
std::string toml_string(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string number_text(double v) {
    if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
    std::string s = std::to_string(v);
    while (!s.empty() && s.back() == '0') s.pop_back();
    return s;
}

// 10000 ms -> "10s"; the largest unit that divides it.
std::string duration_text(Millis d) {
    const long long ms = d.count();
    if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

struct TypeDoc {
    Type type;
    const char* name;
    const char* value;
};

// Every type, in the order of the reference's type table.
constexpr TypeDoc kTypes[] = {
    {Type::String, "string", "a TOML string"},
    {Type::Integer, "integer", "a TOML integer (not a float, not a string) within the range"},
    {Type::Number, "number", "a TOML integer or float within the range"},
    {Type::Boolean, "boolean", "`true` or `false`"},
    {Type::Duration, "duration",
     "a string: a decimal number and a unit, `ms`, `s`, `m` or `h` (`\"500ms\"`, `\"1.5s\"`, "
     "`\"2m\"`), kept in whole milliseconds"},
    {Type::Enum, "enum", "one of the strings listed under range"},
    {Type::Strings, "array of strings", "`[\"a\", \"b\"]`"},
    {Type::ListenAddress, "listen address",
     "`\"HOST:PORT\"` or `\"[IPV6]:PORT\"` to listen on; a host name is resolved when the file "
     "is loaded"},
    {Type::Address, "address",
     "`\"HOST:PORT\"` or `\"[IPV6]:PORT\"` to connect to; a host name is resolved when the file "
     "is loaded"},
    {Type::HostPort, "host[:port]", "`\"HOST\"` or `\"HOST:PORT\"`, used as written (not resolved)"},
    {Type::Path, "path", "a file name; a relative one is relative to the configuration file's folder"},
    {Type::UrlPath, "URL path", "`\"/\"` then visible ASCII characters (no spaces)"},
};

std::string type_text(const schema::KeyInfo& k) {
    for (const auto& t : kTypes)
        if (t.type == k.type) return t.name;
    return "?";
}

std::string range_text(const schema::KeyInfo& k) {
    switch (k.type) {
        case Type::Integer:
        case Type::Number: return number_text(k.min) + " to " + number_text(k.max);
        case Type::Duration: return k.zero_ok ? "0 to 8760h" : "1ms to 8760h";
        case Type::Enum:
        case Type::Strings: {
            std::string out;
            for (const auto& c : k.choices) out += (out.empty() ? "" : ", ") + code(toml_string(c.text));
            if (k.type == Type::Strings && !out.empty()) out = "each one of " + out;
            if (k.non_empty) out += out.empty() ? "not empty" : "; not empty";
            return out.empty() ? "" : out;
        }
        case Type::ListenAddress: return std::string("port 0 to 65535") + (k.empty_off ? "; or `\"\"`" : "");
        case Type::Address: return "port 1 to 65535";
        case Type::HostPort: return "port 1 to 65535 when given";
        default: return "";
    }
}

template <class S>
std::string default_text(const schema::Key<S>& key) {
    if (!key.info.default_note.empty()) return std::string(key.info.default_note);
    if (key.info.required) return "required";
    static const S defaults{};
    if (const auto* e = std::get_if<schema::EnumAccess<S>>(&key.field)) {
        for (const auto& c : key.info.choices)
            if (c.value == e->get(defaults)) return code(toml_string(c.text));
        return "?";
    }
    return std::visit(
        [&](auto&& f) -> std::string {
            using F = std::decay_t<decltype(f)>;
            if constexpr (std::is_same_v<F, schema::EnumAccess<S>>) {
                return "";
            } else {
                const auto& v = defaults.*f;
                using T = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<T, std::string>) return code(toml_string(v));
                else if constexpr (std::is_same_v<T, bool>) return code(v ? "true" : "false");
                else if constexpr (std::is_same_v<T, Millis>) return code(toml_string(duration_text(v)));
                else if constexpr (std::is_same_v<T, double>) return code(number_text(v));
                else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
                    std::string out = "[";
                    for (const auto& s : v) out += (out.size() > 1 ? ", " : "") + toml_string(s);
                    return code(out + "]");
                } else return code(std::to_string(v));
            }
        },
        key.field);
}

template <class S>
SectionDoc document(const schema::Section<S>& section) {
    SectionDoc doc{section.title(), std::string(section.help), {}};
    for (const auto& k : section.keys)
        doc.keys.push_back({std::string(k.info.name), type_text(k.info), default_text(k),
                            range_text(k.info), std::string(k.info.help)});
    return doc;
}

// A table cell: '|' would end it.
std::string cell(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '|') out += '\\';
        out += c;
    }
    return out.empty() ? " " : out;
}

}  // namespace

std::vector<SectionDoc> reference_sections() {
    return {document(schema::proxy_section()), document(schema::listener_section()),
            document(schema::backend_section()), document(schema::route_section()),
            document(schema::certificate_section())};
}

std::string render_reference_markdown() {
    std::string out =
        "Generated by `xmpp-shard-proxy --print-config-reference`. Unknown keys are errors.\n\n"
        "| type | value |\n| --- | --- |\n";
    for (const auto& t : kTypes) out += "| " + std::string(t.name) + " | " + t.value + " |\n";
    for (const auto& s : reference_sections()) {
        out += "\n### `" + s.title + "`\n\n" + s.help + "\n\n";
        out += "| key | type | default | range | description |\n| --- | --- | --- | --- | --- |\n";
        for (const auto& k : s.keys)
            out += "| `" + k.name + "` | " + cell(k.type) + " | " + cell(k.default_value) + " | " +
                   cell(k.range) + " | " + cell(k.help) + " |\n";
    }
    return out;
}

}  // namespace xs::config
