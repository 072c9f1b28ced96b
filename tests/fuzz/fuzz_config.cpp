// libFuzzer target: the config loader (proxy/config: toml++ -> validated Config).
//
// The input is a TOML file. load_config_string() must never crash, hang or leak, and must keep
// its promises: a config or errors, never both or neither; every error located (line and
// column >= 1, inside the text), sorted by position, with a message, rendered FILE:LINE:COL:;
// a loaded config is complete (listeners, backends, a route table), its settings within their
// documented ranges (low_water below high_water, timeouts above zero), its addresses
// resolved to IPv4/IPv6, and its route table answers lookups with valid backend indices.
//
// Host names: the loader resolves them with getaddrinfo(). A fuzzer inventing host names must
// not send DNS queries (slow, and no network here), so this target overrides getaddrinfo with
// a numeric-only version (AI_NUMERICHOST; "localhost" still goes through /etc/hosts). A name
// that is not numeric takes the loader's "cannot resolve" path, which is exercised all the same.
//
// toml++ is compiled header-only into this target (TOML_HEADER_ONLY=1, see CMakeLists.txt) so
// that its parser is instrumented too and the fuzzer can steer through it into the loader.
#include <dlfcn.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "config/loader.hpp"
#include "fuzz_check.hpp"
#include "routing/domain.hpp"

extern "C" int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                           struct addrinfo** res) {
    using Fn = int (*)(const char*, const char*, const struct addrinfo*, struct addrinfo**);
    static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "getaddrinfo"));
    struct addrinfo h {};
    if (hints) h = *hints;
    if (!node || std::strcmp(node, "localhost") != 0) h.ai_flags |= AI_NUMERICHOST;
    return real(node, service, &h, res);
}

namespace {

using namespace xs::config;

constexpr const char* kPath = "fuzz.toml";

void check_loaded(const Config& c, std::string_view in) {
    XS_FUZZ_CHECK(!c.listeners.empty(), "config without listeners", in);
    XS_FUZZ_CHECK(!c.backends.empty(), "config without backends", in);
    XS_FUZZ_CHECK(c.routes != nullptr, "config without a route table", in);
    XS_FUZZ_CHECK(c.path == kPath, "config path not set", in);
    const ProxySettings& p = c.proxy;
    XS_FUZZ_CHECK(p.low_water < p.high_water, "low_water >= high_water accepted", in);
    XS_FUZZ_CHECK(p.max_header_bytes >= 128 && p.max_header_bytes <= (1u << 20),
                  "max_header_bytes out of range", in);
    XS_FUZZ_CHECK(p.header_timeout.count() > 0 && p.connect_timeout.count() > 0 &&
                      p.backend_timeout.count() > 0 && p.close_linger.count() > 0,
                  "a zero timeout accepted", in);
    XS_FUZZ_CHECK(p.drain_timeout.count() >= 0, "negative drain_timeout", in);
    XS_FUZZ_CHECK(p.backlog >= 1 && p.workers <= 256, "backlog or workers out of range", in);
    for (const auto& l : c.listeners) {
        const int fam = l.address.storage.ss_family;
        XS_FUZZ_CHECK((fam == AF_INET || fam == AF_INET6) && l.address.len > 0,
                      "listener '" + l.name + "' not resolved", in);
        XS_FUZZ_CHECK(!l.namespaces.empty(), "listener '" + l.name + "' serves no namespace", in);
        XS_FUZZ_CHECK(c.listener(l.name) != nullptr, "listener lookup by name fails", in);
    }
    XS_FUZZ_CHECK(c.routes->backends().size() == c.backends.size(),
                  "route table backends differ from the config's", in);
    for (std::size_t i = 0; i < c.backends.size(); ++i) {
        const auto& b = c.backends[i];
        const int fam = b.address.storage.ss_family;
        XS_FUZZ_CHECK((fam == AF_INET || fam == AF_INET6) && b.address.len > 0,
                      "backend '" + b.name + "' not resolved", in);
        XS_FUZZ_CHECK(c.routes->backends()[i] == b.name, "backend order differs", in);
        (void)b.address.to_string();
    }
    // Lookups: some fixed domains, and every quoted string of the input that normalises.
    std::vector<std::string> domains = {"meet.example.com", "a.b.example.com", "x", "example.com"};
    for (std::size_t i = 0; i < in.size() && domains.size() < 64; ++i) {
        if (in[i] != '"' && in[i] != '\'') continue;
        std::size_t j = in.find(in[i], i + 1);
        if (j == std::string_view::npos) break;
        std::string_view s = in.substr(i + 1, j - i - 1);
        if (s.size() > 2 && s.substr(0, 2) == "*.") s.remove_prefix(2);
        if (auto d = xs::routing::normalize_domain(s)) domains.push_back(*d);
        i = j;
    }
    for (const auto& l : c.listeners) {
        for (const auto& d : domains) {
            auto dec = c.routes->lookup(l.name, d);
            if (!dec) continue;
            XS_FUZZ_CHECK(!dec->candidates.empty(), "a route decision without candidates", in);
            XS_FUZZ_CHECK(dec->route < c.routes->route_count(), "route index out of range", in);
            for (std::size_t k : dec->candidates)
                XS_FUZZ_CHECK(k < c.backends.size(), "candidate index out of range", in);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    LoadResult r = load_config_string(in, kPath);
    XS_FUZZ_CHECK((r.config != nullptr) != !r.errors.empty(),
                  "a config and errors, or neither", in);
    if (r.config) {
        check_loaded(*r.config, in);
        return 0;
    }
    std::size_t lines = 1;
    for (char ch : in) lines += ch == '\n';
    for (std::size_t i = 0; i < r.errors.size(); ++i) {
        const ConfigError& e = r.errors[i];
        XS_FUZZ_CHECK(e.line >= 1 && e.column >= 1, "an error without a position", in);
        XS_FUZZ_CHECK(e.line <= lines + 1, "error line " + std::to_string(e.line) +
                                               " past the end of the text", in);
        XS_FUZZ_CHECK(!e.message.empty(), "an error without a message", in);
        XS_FUZZ_CHECK(e.file == kPath, "an error naming another file", in);
        const std::string prefix = std::string(kPath) + ":" + std::to_string(e.line) + ":" +
                                   std::to_string(e.column) + ": ";
        XS_FUZZ_CHECK(e.to_string().rfind(prefix, 0) == 0, "to_string() is not FILE:LINE:COL:", in);
        if (i)
            XS_FUZZ_CHECK(r.errors[i - 1].line < e.line ||
                              (r.errors[i - 1].line == e.line && r.errors[i - 1].column <= e.column),
                          "errors not sorted by position", in);
    }
    return 0;
}
