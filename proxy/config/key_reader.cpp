#include "config/key_reader.hpp"

#include <netdb.h>
#include <netinet/in.h>

#include <cstring>

#include "config/values.hpp"

namespace xs::config {
namespace {

using schema::Type;

std::string quoted(std::string_view key) { return "'" + std::string(key) + "'"; }

// "a", "b" or "c" (quote: with double quotes around each).
std::string alternatives(std::span<const schema::Choice> choices, bool quote) {
    std::string out;
    for (std::size_t i = 0; i < choices.size(); ++i) {
        if (i > 0) out += i + 1 == choices.size() ? " or " : ", ";
        out += quote ? "\"" + std::string(choices[i].text) + "\"" : std::string(choices[i].text);
    }
    return out;
}

std::optional<Value> read_string(const toml::node& n, const schema::KeyInfo& k, const Report& report) {
    if (const auto* s = n.as_string()) return Value{s->get(), {}};
    report(n.source(), quoted(k.name) + " must be a string");
    return std::nullopt;
}

std::optional<Value> read_strings(const toml::node& n, const schema::KeyInfo& k, const Report& report) {
    const toml::array* a = n.as_array();
    if (!a) {
        report(n.source(), quoted(k.name) + " must be an array of strings");
        return std::nullopt;
    }
    std::vector<std::string> out;
    bool ok = true;
    for (auto& item : *a) {
        const auto* s = item.as_string();
        if (!s) {
            report(item.source(), quoted(k.name) + " must contain only strings");
            ok = false;
            continue;
        }
        bool allowed = k.choices.empty();
        for (const auto& c : k.choices) allowed = allowed || s->get() == c.text;
        if (!allowed) {
            report(item.source(), "unknown " + std::string(k.item) + " '" + s->get() + "' (expected " +
                                      alternatives(k.choices, false) + ")");
            ok = false;
        }
        out.push_back(s->get());
    }
    if (k.non_empty && a->empty()) {
        report(n.source(), quoted(k.name) + " must not be empty");
        ok = false;
    }
    if (!ok) return std::nullopt;
    return Value{std::move(out), {}};
}

std::optional<Value> read_integer(const toml::node& n, const schema::KeyInfo& k, const Report& report) {
    // Type first: node::value<int64_t>() on a float converts it (undefined behaviour beyond
    // the int64 range, e.g. 4e166), and on a bool it gives 0 or 1.
    const auto* i = n.as_integer();
    const auto lo = static_cast<long long>(k.min), hi = static_cast<long long>(k.max);
    if (!i || i->get() < lo || i->get() > hi) {
        report(n.source(), quoted(k.name) + " must be an integer from " + std::to_string(lo) +
                               " to " + std::to_string(hi));
        return std::nullopt;
    }
    return Value{static_cast<long long>(i->get()), {}};
}

std::optional<Value> read_number(const toml::node& n, const schema::KeyInfo& k, const Report& report) {
    // An integer or a float, read as what it is (no node::value<T>() conversion); written so
    // that NaN is out of range.
    std::optional<double> v;
    if (const auto* i = n.as_integer()) v = static_cast<double>(i->get());
    else if (const auto* f = n.as_floating_point()) v = f->get();
    if (!v || !(*v >= k.min && *v <= k.max)) {
        report(n.source(), quoted(k.name) + " must be a number from " +
                               std::to_string(static_cast<long long>(k.min)) + " to " +
                               std::to_string(static_cast<long long>(k.max)));
        return std::nullopt;
    }
    return Value{*v, {}};
}

std::optional<Value> read_duration(const toml::node& n, const schema::KeyInfo& k, const Report& report) {
    const auto* s = n.as_string();
    std::string why;
    std::optional<Millis> d;
    if (s) d = parse_duration(s->get(), &why);
    else why = "expected a duration string such as \"10s\"";
    if (d && d->count() == 0 && !k.zero_ok) {
        d.reset();
        why = "must be greater than zero";
    }
    if (!d) {
        report(n.source(), quoted(k.name) + ": " + why);
        return std::nullopt;
    }
    return Value{*d, {}};
}

std::optional<Value> read_enum(const toml::node& n, const schema::KeyInfo& k, const Report& report) {
    auto s = read_string(n, k, report);
    if (!s) return std::nullopt;
    for (const auto& c : k.choices)
        if (std::get<std::string>(s->v) == c.text) return Value{c.value, {}};
    report(n.source(), quoted(k.name) + " must be " + alternatives(k.choices, true));
    return std::nullopt;
}

std::optional<Value> read_address(const toml::node& n, const schema::KeyInfo& k, const Report& report) {
    auto v = read_string(n, k, report);
    if (!v) return std::nullopt;
    const std::string& text = std::get<std::string>(v->v);
    if (text.empty() && k.empty_off) return v;
    const bool listen = k.type == Type::ListenAddress;
    if (k.resolve) {
        if (!resolve(n, text, listen, v->address, report)) return std::nullopt;
        return v;
    }
    std::string why;
    if (!parse_host_port(text, listen, &why)) {
        report(n.source(), why);
        return std::nullopt;
    }
    return v;
}

// "HOST" or "HOST:PORT": a value with a colon must be a valid HOST:PORT.
std::optional<Value> read_host_port(const toml::node& n, const schema::KeyInfo& k, const Report& report) {
    auto v = read_string(n, k, report);
    if (!v) return std::nullopt;
    const std::string& s = std::get<std::string>(v->v);
    std::string why;
    if (!s.empty() && s.find(':') != std::string::npos && !parse_host_port(s, false, &why)) {
        report(n.source(), quoted(k.name) + ": " + why);
        return std::nullopt;
    }
    return v;
}

std::optional<Value> read_url_path(const toml::node& n, const schema::KeyInfo& k, const Report& report) {
    auto v = read_string(n, k, report);
    if (!v) return std::nullopt;
    const std::string& s = std::get<std::string>(v->v);
    bool ok = !s.empty() && s[0] == '/';
    for (char c : s) ok = ok && c > ' ' && c < 0x7f;
    if (!ok) {
        report(n.source(), quoted(k.name) + " must be an absolute path (\"/...\") of visible ASCII characters");
        return std::nullopt;
    }
    return v;
}

}  // namespace

std::optional<Value> read_value(const toml::node& n, const schema::KeyInfo& k, const Report& report) {
    switch (k.type) {
        case Type::String:
        case Type::Path: return read_string(n, k, report);
        case Type::Integer: return read_integer(n, k, report);
        case Type::Number: return read_number(n, k, report);
        case Type::Boolean:
            if (const auto* b = n.as_boolean()) return Value{b->get(), {}};
            report(n.source(), quoted(k.name) + " must be true or false");
            return std::nullopt;
        case Type::Duration: return read_duration(n, k, report);
        case Type::Enum: return read_enum(n, k, report);
        case Type::Strings: return read_strings(n, k, report);
        case Type::ListenAddress:
        case Type::Address: return read_address(n, k, report);
        case Type::HostPort: return read_host_port(n, k, report);
        case Type::UrlPath: return read_url_path(n, k, report);
    }
    return std::nullopt;
}

bool resolve(const toml::node& n, const std::string& text, bool listen, SocketAddress& out,
             const Report& report) {
    std::string why;
    auto hp = parse_host_port(text, listen, &why);
    if (!hp) {
        report(n.source(), why);
        return false;
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (listen ? AI_PASSIVE : 0);
    addrinfo* res = nullptr;
    std::string port = std::to_string(hp->port);
    int rc = getaddrinfo(hp->host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0 || !res) {
        report(n.source(), "cannot resolve '" + hp->host + "': " + gai_strerror(rc));
        return false;
    }
    std::memcpy(&out.storage, res->ai_addr, res->ai_addrlen);
    out.len = res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

}  // namespace xs::config
