// The configuration schema: one table per section, each key with its name, type, range, help
// and the field it fills (whose initial value is the key's default). The tables drive the
// loader (known keys, reading and checking every value: key_reader.hpp) and the reference that
// `xmpp-shard-proxy --print-config-reference` prints (reference.hpp, docs/CONFIG.md).
// Cross-field checks (low_water < high_water, routes naming known backends, ...) stay in the
// loader's code.
#pragma once
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "routing/route_table.hpp"
#include "tls/tls_context.hpp"

namespace xs::config::schema {

enum class Type {
    String,
    Integer,        // a TOML integer in [min, max]
    Number,         // a TOML integer or float in [min, max]
    Boolean,
    Duration,       // "500ms", "10s", "1.5m", "1h", kept in milliseconds; min is 0 or 1 (ms)
    Enum,           // one string of `choices`
    Strings,        // an array of strings (each one of `choices` when there are any)
    ListenAddress,  // "HOST:PORT" or "[IPV6]:PORT" to listen on, port 0-65535
    Address,        // "HOST:PORT" or "[IPV6]:PORT" to connect to, port 1-65535
    HostPort,       // "HOST" or "HOST:PORT" (not resolved)
    Path,           // a file; relative to the configuration file's folder
    UrlPath,        // an absolute HTTP path: '/' then visible ASCII
};

struct Choice {
    std::string_view text;
    int value;  // the enum's value
};

// What the reader checks and the reference shows.
struct KeyInfo {
    std::string_view name;
    Type type = Type::String;
    std::string_view help;
    bool required = false;
    double min = 0, max = 0;            // Integer, Number
    bool zero_ok = false;               // Duration: 0 allowed (else greater than zero)
    std::span<const Choice> choices{};  // Enum; Strings: the allowed items
    std::string_view item{};            // Strings with choices: what one item is ("namespace")
    bool non_empty = false;             // Strings: [] is an error
    bool empty_off = false;             // ListenAddress: "" turns the feature off
    bool resolve = false;               // ListenAddress, Address: resolved while loading
    std::string_view default_note{};    // shown instead of the field's initial value
};

template <class S>
struct EnumAccess {
    int (*get)(const S&);
    void (*set)(S&, int);
};

// The field a key fills in its section's struct S.
template <class S>
using Field = std::variant<std::string S::*, std::vector<std::string> S::*, bool S::*,
                           double S::*, Millis S::*, unsigned S::*, std::size_t S::*, int S::*,
                           EnumAccess<S>>;

template <class S>
struct Key {
    KeyInfo info;
    Field<S> field;
    void (*resolved)(S&, const SocketAddress&) = nullptr;  // addresses: where the resolved one goes

    constexpr Key required() const { Key k = *this; k.info.required = true; return k; }
    constexpr Key non_empty() const { Key k = *this; k.info.non_empty = true; return k; }
    constexpr Key empty_off() const { Key k = *this; k.info.empty_off = true; return k; }
    constexpr Key note(std::string_view d) const { Key k = *this; k.info.default_note = d; return k; }
    constexpr Key items(std::span<const Choice> c, std::string_view item) const {
        Key k = *this;
        k.info.choices = c;
        k.info.item = item;
        return k;
    }
};

template <class S>
struct Section {
    std::string_view name;  // the top-level TOML key
    bool array;             // [[name]] (any number of tables) or [name] (one table)
    std::string_view help;
    std::span<const Key<S>> keys;

    std::string title() const {
        return array ? "[[" + std::string(name) + "]]" : "[" + std::string(name) + "]";
    }
    const Key<S>* find(std::string_view key) const {
        for (const auto& k : keys)
            if (k.info.name == key) return &k;
        return nullptr;
    }
};

const Section<ProxySettings>& proxy_section();
const Section<ListenerConfig>& listener_section();
const Section<BackendConfig>& backend_section();
const Section<routing::RouteSpec>& route_section();
const Section<tls::CertificateSpec>& certificate_section();

// The top-level keys (section names), in the order of the reference.
std::vector<std::string_view> section_names();

// --- building the tables: one call per key -------------------------------------------------

template <class>
struct MemberOf;
template <class S, class T>
struct MemberOf<T S::*> {
    using Struct = S;
    using Value = T;
};

// Reads and writes an enum (or bool) field as the int of its Choice.
template <auto M>
constexpr EnumAccess<typename MemberOf<decltype(M)>::Struct> enum_field() {
    using S = typename MemberOf<decltype(M)>::Struct;
    using E = typename MemberOf<decltype(M)>::Value;
    return {[](const S& s) { return static_cast<int>(s.*M); },
            [](S& s, int v) { s.*M = static_cast<E>(v); }};
}

template <class S>
constexpr Key<S> string(std::string_view name, std::string S::*f, std::string_view help) {
    return {{.name = name, .type = Type::String, .help = help}, f};
}

template <class S>
constexpr Key<S> url_path(std::string_view name, std::string S::*f, std::string_view help) {
    return {{.name = name, .type = Type::UrlPath, .help = help}, f};
}

template <class S, class T>
    requires std::is_integral_v<T> && (!std::is_same_v<T, bool>)
constexpr Key<S> integer(std::string_view name, T S::*f, long long min, long long max,
                         std::string_view help) {
    return {{.name = name, .type = Type::Integer, .help = help, .min = double(min), .max = double(max)}, f};
}

template <class S>
constexpr Key<S> number(std::string_view name, double S::*f, double min, double max,
                        std::string_view help) {
    return {{.name = name, .type = Type::Number, .help = help, .min = min, .max = max}, f};
}

template <class S>
constexpr Key<S> boolean(std::string_view name, bool S::*f, std::string_view help) {
    return {{.name = name, .type = Type::Boolean, .help = help}, f};
}

enum class Zero { Allowed, Refused };

template <class S>
constexpr Key<S> duration(std::string_view name, Millis S::*f, Zero zero, std::string_view help) {
    return {{.name = name, .type = Type::Duration, .help = help, .zero_ok = zero == Zero::Allowed}, f};
}

template <class S>
constexpr Key<S> enumeration(std::string_view name, EnumAccess<S> f, std::span<const Choice> choices,
                             std::string_view help) {
    return {{.name = name, .type = Type::Enum, .help = help, .choices = choices}, f};
}

template <class S>
constexpr Key<S> strings(std::string_view name, std::vector<std::string> S::*f, std::string_view help) {
    return {{.name = name, .type = Type::Strings, .help = help}, f};
}

// Writes a resolved address into the field M.
template <auto M>
constexpr void (*address_field())(typename MemberOf<decltype(M)>::Struct&, const SocketAddress&) {
    using S = typename MemberOf<decltype(M)>::Struct;
    return [](S& s, const SocketAddress& a) { s.*M = a; };
}

// An address to listen on (ListenAddress) or to connect to (Address), as written; `resolved`
// (address_field<&S::member>(), or nullptr) receives it resolved while loading.
template <class S>
constexpr Key<S> address(std::string_view name, Type type, std::string S::*text,
                         std::type_identity_t<void (*)(S&, const SocketAddress&)> resolved,
                         std::string_view help) {
    return {{.name = name, .type = type, .help = help, .resolve = resolved != nullptr}, text, resolved};
}

template <class S>
constexpr Key<S> host_port(std::string_view name, std::string S::*f, std::string_view help) {
    return {{.name = name, .type = Type::HostPort, .help = help}, f};
}

template <class S>
constexpr Key<S> path(std::string_view name, std::string S::*f, std::string_view help) {
    return {{.name = name, .type = Type::Path, .help = help}, f};
}

}  // namespace xs::config::schema
