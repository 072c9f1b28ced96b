#include "config/loader.hpp"

#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "config/values.hpp"
#include "routing/domain.hpp"
#include "tls/tls_context.hpp"
#include "routing/stream_header_sniffer.hpp"

namespace xs::config {
namespace {

using routing::RouteField;

class Loader {
public:
    explicit Loader(std::string path) : path_(std::move(path)) {}

    LoadResult run(std::string_view text) {
        toml::table root;
        try {
            root = toml::parse(text, path_);
        } catch (const toml::parse_error& e) {
            add(e.source(), std::string(e.description()));
            return finish();
        }
        known_keys(root, {"proxy", "listener", "backend", "route", "certificate"});
        if (auto* p = root.get("proxy")) {
            if (auto* t = p->as_table()) load_proxy(*t);
            else add(p->source(), "[proxy] must be a table");
        }
        if (!cfg_->proxy.metrics.empty()) {
            const toml::node* m = root.at_path("proxy.metrics").node();
            resolve(m ? *m : static_cast<const toml::node&>(root), cfg_->proxy.metrics, true,
                    cfg_->metrics_address);
        }
        for_each_table(root, "listener", [&](const toml::table& t) { load_listener(t); });
        for_each_table(root, "backend", [&](const toml::table& t) { load_backend(t); });
        for_each_table(root, "route", [&](const toml::table& t) { load_route(t); });
        for_each_table(root, "certificate", [&](const toml::table& t) { load_certificate(t); });
        build_certificates();
        if (cfg_->listeners.empty()) add(root.source(), "no [[listener]] configured", true);
        if (cfg_->backends.empty()) add(root.source(), "no [[backend]] configured", true);
        if (spec_.routes.empty()) add(root.source(), "no [[route]] configured", true);
        check_unique(cfg_->listeners, "listener");
        check_unique(cfg_->backends, "backend");
        compile_routes();
        return finish();
    }

private:

    std::string path_;
    std::vector<ConfigError> errors_;
    std::shared_ptr<Config> cfg_ = std::make_shared<Config>();
    routing::TableSpec spec_;
    std::vector<const toml::table*> route_nodes_;
    std::vector<const toml::table*> listener_nodes_, backend_nodes_, cert_nodes_;
    std::vector<tls::CertificateSpec> cert_specs_;
    std::vector<const toml::node*> terminating_;  // tls = "terminate" keys

    void add(const toml::source_region& r, std::string msg, bool file_level = false) {
        ConfigError e;
        e.file = path_;
        e.line = file_level ? 1 : r.begin.line;
        e.column = file_level ? 1 : r.begin.column;
        if (e.line == 0) e.line = 1;
        if (e.column == 0) e.column = 1;
        e.message = std::move(msg);
        errors_.push_back(std::move(e));
    }

    // An error about item `item` of key `key` in the index-th table of `tables`, at the most
    // precise position known (the array item, else the key, else the table).
    void add_at(const std::vector<const toml::table*>& tables, std::size_t index, const char* key,
                std::size_t item, const std::string& message) {
        const toml::table* t = index < tables.size() ? tables[index] : nullptr;
        const toml::node* where = t;
        if (t && key && t->get(key)) {
            where = t->get(key);
            if (auto* a = where->as_array(); a && item < a->size()) where = a->get(item);
        }
        if (where) add(where->source(), message);
        else add(toml::source_region{}, message, true);
    }

    LoadResult finish() {
        LoadResult r;
        if (errors_.empty()) {
            cfg_->path = path_;
            r.config = cfg_;
        } else {
            std::stable_sort(errors_.begin(), errors_.end(), [](const auto& a, const auto& b) {
                return a.line != b.line ? a.line < b.line : a.column < b.column;
            });
            r.errors = std::move(errors_);
        }
        return r;
    }

    void known_keys(const toml::table& t, std::initializer_list<std::string_view> allowed,
                    std::string_view where = "") {
        for (auto&& [k, v] : t) {
            bool ok = false;
            for (auto a : allowed) ok = ok || k.str() == a;
            if (!ok) {
                std::string m = "unknown key '" + std::string(k.str()) + "'";
                if (!where.empty()) m += " in " + std::string(where);
                add(k.source(), m);
            }
        }
    }

    template <typename F>
    void for_each_table(const toml::table& root, std::string_view key, F&& f) {
        const toml::node* n = root.get(key);
        if (!n) return;
        const toml::array* arr = n->as_array();
        if (!arr) {
            add(n->source(), "'" + std::string(key) + "' must be an array of tables: [[" +
                                 std::string(key) + "]]");
            return;
        }
        for (auto& item : *arr) {
            if (auto* t = item.as_table()) f(*t);
            else add(item.source(), "[[" + std::string(key) + "]] entries must be tables");
        }
    }

    const std::string* get_string(const toml::table& t, std::string_view key, bool required,
                                  std::string_view where) {
        const toml::node* n = t.get(key);
        if (!n) {
            if (required) add(t.source(), std::string(where) + " needs '" + std::string(key) + "'");
            return nullptr;
        }
        if (auto* s = n->as_string()) return &s->get();
        add(n->source(), "'" + std::string(key) + "' must be a string");
        return nullptr;
    }

    std::vector<std::string> get_strings(const toml::table& t, std::string_view key,
                                         bool required, std::string_view where) {
        std::vector<std::string> out;
        const toml::node* n = t.get(key);
        if (!n) {
            if (required) add(t.source(), std::string(where) + " needs '" + std::string(key) + "'");
            return out;
        }
        const toml::array* a = n->as_array();
        if (!a) {
            add(n->source(), "'" + std::string(key) + "' must be an array of strings");
            return out;
        }
        for (auto& item : *a) {
            if (auto* s = item.as_string()) out.push_back(s->get());
            else add(item.source(), "'" + std::string(key) + "' must contain only strings");
        }
        return out;
    }

    void get_duration(const toml::table& t, std::string_view key, Millis& out, bool allow_zero) {
        const toml::node* n = t.get(key);
        if (!n) return;
        const auto* s = n->as_string();
        std::string why;
        std::optional<Millis> d;
        if (s) d = parse_duration(s->get(), &why);
        else why = "expected a duration string such as \"10s\"";
        if (d && (*d).count() == 0 && !allow_zero) {
            d.reset();
            why = "must be greater than zero";
        }
        if (!d) add(n->source(), "'" + std::string(key) + "': " + why);
        else out = *d;
    }

    template <typename T>
    void get_uint(const toml::table& t, std::string_view key, T& out, int64_t lo, int64_t hi) {
        const toml::node* n = t.get(key);
        if (!n) return;
        // Type first: node::value<int64_t>() on a float converts it (undefined behaviour beyond
        // the int64 range, e.g. 4e166), and on a bool it gives 0 or 1.
        const auto* i = n->as_integer();
        if (!i || i->get() < lo || i->get() > hi) {
            add(n->source(), "'" + std::string(key) + "' must be an integer from " +
                                 std::to_string(lo) + " to " + std::to_string(hi));
            return;
        }
        out = static_cast<T>(i->get());
    }

    void get_bool(const toml::table& t, std::string_view key, bool& out) {
        const toml::node* n = t.get(key);
        if (!n) return;
        if (const auto* b = n->as_boolean()) out = b->get();
        else add(n->source(), "'" + std::string(key) + "' must be true or false");
    }

    void get_number(const toml::table& t, std::string_view key, double& out, double lo, double hi) {
        const toml::node* n = t.get(key);
        if (!n) return;
        // An integer or a float, read as what it is (no node::value<T>() conversion); written
        // so that NaN is out of range.
        std::optional<double> v;
        if (const auto* i = n->as_integer()) v = static_cast<double>(i->get());
        else if (const auto* f = n->as_floating_point()) v = f->get();
        if (!v || !(*v >= lo && *v <= hi)) {
            add(n->source(), "'" + std::string(key) + "' must be a number from " +
                                 std::to_string(static_cast<long long>(lo)) + " to " +
                                 std::to_string(static_cast<long long>(hi)));
            return;
        }
        out = *v;
    }

    void load_proxy(const toml::table& t) {
        known_keys(t, {"workers", "metrics", "header_timeout", "max_header_bytes", "drain_timeout",
                       "connect_timeout", "backend_timeout", "close_linger", "high_water",
                       "low_water", "backlog", "log_format", "session_log_rate", "max_connections"},
                   "[proxy]");
        ProxySettings& p = cfg_->proxy;
        get_uint(t, "workers", p.workers, 0, 256);
        if (auto* m = get_string(t, "metrics", false, "[proxy]")) {
            std::string why;
            p.metrics = *m;
        }
        get_duration(t, "header_timeout", p.header_timeout, false);
        get_uint(t, "max_header_bytes", p.max_header_bytes, 128, 1 << 20);
        get_duration(t, "drain_timeout", p.drain_timeout, true);
        get_duration(t, "connect_timeout", p.connect_timeout, false);
        get_duration(t, "backend_timeout", p.backend_timeout, false);
        get_duration(t, "close_linger", p.close_linger, false);
        get_uint(t, "high_water", p.high_water, 4096, 64 << 20);
        get_uint(t, "low_water", p.low_water, 0, 64 << 20);
        get_uint(t, "backlog", p.backlog, 1, 65535);
        get_uint(t, "session_log_rate", p.session_log_rate, 0, 1'000'000);
        get_uint(t, "max_connections", p.max_connections, 0, 10'000'000);
        if (auto* f = get_string(t, "log_format", false, "[proxy]")) {
            if (*f == "json") p.log_format = LogFormat::Json;
            else if (*f != "kv") add(t.get("log_format")->source(), "'log_format' must be \"kv\" or \"json\"");
        }
        if (p.low_water >= p.high_water)
            add((t.get("low_water") ? t.get("low_water") : &t)->source(),
                "'low_water' must be below 'high_water'");
    }

    bool resolve(const toml::node& n, const std::string& text, bool listener, SocketAddress& out) {
        std::string why;
        auto hp = parse_host_port(text, listener, &why);
        if (!hp) {
            add(n.source(), why);
            return false;
        }
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV | (listener ? AI_PASSIVE : 0);
        addrinfo* res = nullptr;
        std::string port = std::to_string(hp->port);
        int rc = getaddrinfo(hp->host.c_str(), port.c_str(), &hints, &res);
        if (rc != 0 || !res) {
            add(n.source(), "cannot resolve '" + hp->host + "': " + gai_strerror(rc));
            return false;
        }
        std::memcpy(&out.storage, res->ai_addr, res->ai_addrlen);
        out.len = res->ai_addrlen;
        freeaddrinfo(res);
        return true;
    }

    void load_listener(const toml::table& t) {
        known_keys(t, {"name", "bind", "namespaces", "tls", "direct_tls", "per_ip_rate", "per_ip_burst",
                       "see_other_host"},
                   "[[listener]]");
        ListenerConfig l;
        if (auto* s = get_string(t, "name", true, "[[listener]]")) l.name = *s;
        if (auto* s = get_string(t, "bind", true, "[[listener]]")) {
            l.bind = *s;
            resolve(*t.get("bind"), *s, true, l.address);
        }
        if (t.get("namespaces")) {
            l.namespaces = get_strings(t, "namespaces", false, "[[listener]]");
            const toml::array* a = t.get("namespaces")->as_array();
            for (std::size_t i = 0; a && i < l.namespaces.size(); ++i) {
                if (l.namespaces[i] != routing::kClientNs && l.namespaces[i] != routing::kComponentNs)
                    add((*a)[i].source(), "unknown namespace '" + l.namespaces[i] +
                                               "' (expected jabber:client or jabber:component:accept)");
            }
            if (a && a->empty()) add(t.get("namespaces")->source(), "'namespaces' must not be empty");
        } else {
            l.namespaces = {std::string(routing::kClientNs), std::string(routing::kComponentNs)};
        }
        if (auto* s = get_string(t, "tls", false, "[[listener]]")) {
            if (*s == "terminate") {
                l.tls = TlsMode::Terminate;
                terminating_.push_back(t.get("tls"));
            } else if (*s != "passthrough") {
                add(t.get("tls")->source(), "'tls' must be \"passthrough\" or \"terminate\"");
            }
        }
        get_bool(t, "direct_tls", l.direct_tls);
        get_number(t, "per_ip_rate", l.per_ip_rate, 0, 1e6);
        get_uint(t, "per_ip_burst", l.per_ip_burst, 0, 1'000'000);
        if (auto* s = get_string(t, "see_other_host", false, "[[listener]]")) {
            std::string why;
            if (!s->empty() && !parse_host_port(*s, false, &why) && s->find(':') != std::string::npos)
                add(t.get("see_other_host")->source(), "'see_other_host': " + why);
            l.see_other_host = *s;
        }
        listener_nodes_.push_back(&t);
        spec_.listeners.push_back(l.name);
        cfg_->listeners.push_back(std::move(l));
    }

    void load_backend(const toml::table& t) {
        known_keys(t, {"name", "address", "proxy_protocol", "check", "check_interval", "check_timeout",
                       "rise", "fall", "drain", "max_connecting", "max_new_per_second", "max_queue",
                       "queue_timeout", "max_sessions"},
                   "[[backend]]");
        BackendConfig b;
        if (auto* s = get_string(t, "name", true, "[[backend]]")) b.name = *s;
        if (auto* s = get_string(t, "address", true, "[[backend]]")) {
            b.address_text = *s;
            resolve(*t.get("address"), *s, false, b.address);
        }
        if (auto* s = get_string(t, "proxy_protocol", false, "[[backend]]")) {
            if (*s == "v2")
                b.proxy_protocol_v2 = true;
            else if (*s != "none")
                add(t.get("proxy_protocol")->source(), "'proxy_protocol' must be \"none\" or \"v2\"");
        }
        if (auto* c = get_string(t, "check", false, "[[backend]]")) {
            if (*c == "stream") b.check = CheckKind::Stream;
            else if (*c == "tcp") b.check = CheckKind::Tcp;
            else if (*c == "none") b.check = CheckKind::None;
            else if (*c != "stream")
                add(t.get("check")->source(), "'check' must be \"stream\", \"tcp\" or \"none\"");
        }
        get_duration(t, "check_interval", b.check_interval, false);
        get_duration(t, "check_timeout", b.check_timeout, false);
        get_uint(t, "rise", b.rise, 1, 100);
        get_uint(t, "fall", b.fall, 1, 100);
        get_bool(t, "drain", b.drain);
        get_uint(t, "max_connecting", b.max_connecting, 0, 1'000'000);
        get_number(t, "max_new_per_second", b.max_new_per_second, 0, 1e6);
        get_uint(t, "max_queue", b.max_queue, 0, 1'000'000);
        get_duration(t, "queue_timeout", b.queue_timeout, false);
        get_uint(t, "max_sessions", b.max_sessions, 0, 10'000'000);
        backend_nodes_.push_back(&t);
        spec_.backends.push_back(b.name);
        cfg_->backends.push_back(std::move(b));
    }

    // [[certificate]]: cert, key (paths relative to the config file's folder), domains.
    void load_certificate(const toml::table& t) {
        known_keys(t, {"cert", "key", "domains"}, "[[certificate]]");
        tls::CertificateSpec c;
        if (auto* s = get_string(t, "cert", true, "[[certificate]]")) c.cert_path = relative_to_config(*s);
        if (auto* s = get_string(t, "key", true, "[[certificate]]")) c.key_path = relative_to_config(*s);
        c.domains = get_strings(t, "domains", true, "[[certificate]]");
        cert_nodes_.push_back(&t);
        cert_specs_.push_back(std::move(c));
    }

    std::string relative_to_config(const std::string& p) const {
        if (p.empty() || p.front() == '/') return p;
        auto slash = path_.rfind('/');
        return slash == std::string::npos ? p : path_.substr(0, slash + 1) + p;
    }

    void build_certificates() {
        if (cert_specs_.empty()) {
            for (const toml::node* n : terminating_)
                add(n->source(), "tls = \"terminate\" needs at least one [[certificate]]");
            return;
        }
        auto result = tls::CertStore::build(cert_specs_);
        if (auto* store = std::get_if<std::shared_ptr<const tls::CertStore>>(&result)) {
            cfg_->certs = *store;
            return;
        }
        for (const auto& ce : std::get<std::vector<tls::CertError>>(result)) {
            const char* key = ce.field == tls::CertField::Cert      ? "cert"
                              : ce.field == tls::CertField::Key     ? "key"
                              : ce.field == tls::CertField::Domains ? "domains"
                                                                    : nullptr;
            add_at(cert_nodes_, ce.certificate, key, ce.item, ce.message);
        }
    }

    void load_route(const toml::table& t) {
        known_keys(t, {"name", "domains", "backends", "balance", "listeners"}, "[[route]]");
        routing::RouteSpec r;
        if (auto* s = get_string(t, "name", false, "[[route]]")) r.name = *s;
        r.domains = get_strings(t, "domains", true, "[[route]]");
        r.backends = get_strings(t, "backends", true, "[[route]]");
        r.listeners = get_strings(t, "listeners", false, "[[route]]");
        if (auto* s = get_string(t, "balance", false, "[[route]]")) {
            if (*s == "hash") r.balance = routing::Balance::Hash;
            else if (*s != "failover")
                add(t.get("balance")->source(), "'balance' must be \"failover\" or \"hash\"");
        }
        route_nodes_.push_back(&t);
        spec_.routes.push_back(std::move(r));
    }

    // The stream health check opens a stream to the first exact domain routed to the backend
    // (any answer with a stream header counts: even Prosody's host-unknown comes with one).
    void assign_probe_domains() {
        for (const auto& r : spec_.routes)
            for (const auto& d : r.domains) {
                auto p = routing::parse_pattern(d);
                if (!p || p->kind != routing::PatternKind::Exact) continue;
                for (const auto& name : r.backends)
                    for (auto& b : cfg_->backends)
                        if (b.name == name && b.probe_domain.empty()) b.probe_domain = p->text;
            }
        for (auto& b : cfg_->backends)
            if (b.probe_domain.empty()) b.probe_domain = "localhost";
    }

    template <typename V>
    void check_unique(const V& items, std::string_view what) {
        std::set<std::string> seen;
        const auto& nodes = what == "listener" ? listener_nodes_ : backend_nodes_;
        for (std::size_t i = 0; i < items.size(); ++i) {
            if (items[i].name.empty()) continue;
            if (!seen.insert(items[i].name).second) {
                const toml::node* n = nodes[i]->get("name");
                add(n ? n->source() : nodes[i]->source(),
                    "duplicate " + std::string(what) + " name '" + items[i].name + "'");
            }
        }
    }

    void compile_routes() {
        // Compiled even when other errors exist, so that route problems are reported too.
        if (spec_.routes.empty()) return;
        auto result = routing::RouteTable::compile(spec_);
        if (auto* table = std::get_if<std::shared_ptr<const routing::RouteTable>>(&result)) {
            cfg_->routes = *table;
            assign_probe_domains();
            return;
        }
        for (const auto& ce : std::get<std::vector<routing::CompileError>>(result)) {
            const char* key = nullptr;
            switch (ce.field) {
                case RouteField::Name: key = "name"; break;
                case RouteField::Domains: key = "domains"; break;
                case RouteField::Backends: key = "backends"; break;
                case RouteField::Listeners: key = "listeners"; break;
                case RouteField::Route: break;
            }
            add_at(route_nodes_, ce.route, key, ce.item, ce.message);
        }
    }
};

}  // namespace

std::string ConfigError::to_string() const {
    return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

LoadResult load_config_string(std::string_view text, const std::string& path) {
    return Loader(path).run(text);
}

LoadResult load_config_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        LoadResult r;
        r.errors.push_back({path, 1, 1, std::string("cannot open file: ") + std::strerror(errno)});
        return r;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return load_config_string(ss.str(), path);
}

const ListenerConfig* Config::listener(const std::string& name) const {
    for (const auto& l : listeners)
        if (l.name == name) return &l;
    return nullptr;
}

}  // namespace xs::config
