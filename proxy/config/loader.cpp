#include "config/loader.hpp"

#include "routing/http_lines.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "config/key_reader.hpp"
#include "config/schema.hpp"
#include "config/values.hpp"
#include "routing/domain.hpp"
#include "tls/tls_context.hpp"

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
        const auto sections = schema::section_names();
        for (auto&& [k, v] : root)
            if (std::find(sections.begin(), sections.end(), k.str()) == sections.end())
                add(k.source(), "unknown key '" + std::string(k.str()) + "'");
        const auto& proxy = schema::proxy_section();
        if (auto* p = root.get(proxy.name)) {
            if (auto* t = p->as_table()) load_proxy(*t);
            else add(p->source(), proxy.title() + " must be a table");
        }
        // The resolved metrics address lives outside [proxy]'s settings: resolved here, also
        // when it is the default. A value [proxy] refused left the default in place.
        if (!cfg_->proxy.metrics.empty()) {
            const toml::node* m = root.at_path("proxy.metrics").node();
            resolve(m ? *m : static_cast<const toml::node&>(root), cfg_->proxy.metrics, true,
                    cfg_->metrics_address, report_);
        }
        for_each_table(root, schema::listener_section().name, [&](const toml::table& t) { load_listener(t); });
        for_each_table(root, schema::backend_section().name, [&](const toml::table& t) { load_backend(t); });
        for_each_table(root, schema::route_section().name, [&](const toml::table& t) { load_route(t); });
        for_each_table(root, schema::certificate_section().name,
                       [&](const toml::table& t) { load_certificate(t); });
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
    Report report_ = [this](const toml::source_region& r, std::string m) { add(r, std::move(m)); };

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

    // Reads one table of a section as its schema says: a key the schema does not know is an
    // error, a required key missing is an error, every value present is checked and stored.
    template <class S>
    void read_section(const toml::table& t, const schema::Section<S>& section, S& out) {
        const std::string where = section.title();
        for (auto&& [k, v] : t)
            if (!section.find(k.str()))
                add(k.source(), "unknown key '" + std::string(k.str()) + "' in " + where);
        for (const auto& key : section.keys) {
            const toml::node* n = t.get(key.info.name);
            if (!n) {
                if (key.info.required) add(t.source(), where + " needs '" + std::string(key.info.name) + "'");
                continue;
            }
            auto value = read_value(*n, key.info, report_);
            if (!value) continue;
            if (key.info.type == schema::Type::Path) {
                auto& p = std::get<std::string>(value->v);
                p = relative_to_config(p);
            }
            store(key, std::move(*value), out);
        }
    }

    void load_proxy(const toml::table& t) {
        ProxySettings& p = cfg_->proxy;
        read_section(t, schema::proxy_section(), p);
        if (p.low_water >= p.high_water)
            add((t.get("low_water") ? t.get("low_water") : &t)->source(),
                "'low_water' must be below 'high_water'");
        for (std::size_t i = 0; i < p.resolvers.size(); ++i) {
            std::string why;
            if (!resolver_csv_item(p.resolvers[i], &why))
                add_at({&t}, 0, "resolvers", i, "'resolvers' item '" + p.resolvers[i] + "': " + why);
        }
    }

    bool https_ = false;  // an http listener terminates TLS: ALPN http/1.1 is accepted too

    void load_listener(const toml::table& t) {
        ListenerConfig l;
        read_section(t, schema::listener_section(), l);
        if (l.tls == TlsMode::Terminate) terminating_.push_back(t.get("tls"));
        if (l.protocol == Protocol::Http && l.direct_tls)
            add(t.get("direct_tls")->source(),
                "direct_tls is for XMPP listeners; HTTPS on an http listener is tls = \"terminate\"");
        if (l.protocol == Protocol::Http && l.tls == TlsMode::Terminate) https_ = true;
        if (!l.shard_header.empty() && !routing::http::is_token(l.shard_header))
            add(t.get("shard_header")->source(), "'shard_header' must be an HTTP field name (a token)");
        listener_nodes_.push_back(&t);
        spec_.listeners.push_back(l.name);
        cfg_->listeners.push_back(std::move(l));
    }

    void load_backend(const toml::table& t) {
        BackendConfig b;
        read_section(t, schema::backend_section(), b);
        bool shard_ok = true;
        for (char c : b.shard) shard_ok = shard_ok && c > ' ' && c < 0x7f;
        if (!shard_ok) add(t.get("shard")->source(), "'shard' must be visible ASCII without spaces");
        check_srv(t, b);
        backend_nodes_.push_back(&t);
        spec_.backends.push_back(b.name);
        cfg_->backends.push_back(std::move(b));
    }

    // Exactly one of address and srv; srv's own keys only with srv.
    void check_srv(const toml::table& t, const BackendConfig& b) {
        const toml::node* srv = t.get("srv");
        if (!srv && !t.get("address")) {
            add(t.source(), "[[backend]] needs 'address' or 'srv'");
        } else if (srv && t.get("address")) {
            add(srv->source(), "'srv' and 'address' exclude each other: the SRV answer gives the addresses");
        } else if (srv && !is_dns_name(b.srv)) {
            add(srv->source(), "'srv' must be a DNS name (labels of letters, digits, '-' and '_')");
        } else if (srv && !b.member_suffix.empty() && !is_dns_name("a" + b.member_suffix)) {
            add(t.get("member_suffix")->source(), "'member_suffix' must be letters, digits, '-', '_' or '.'");
        } else if (srv && t.get("shard")) {
            add(t.get("shard")->source(), "'shard' names one backend; the members of an 'srv' group "
                                          "are named (and sharded) by their SRV targets");
        }
        for (const char* k : {"srv_min_interval", "srv_max_interval", "member_suffix"})
            if (!srv && t.get(k)) add(t.get(k)->source(), std::string("'") + k + "' needs 'srv'");
        if (srv && b.srv_min_interval > b.srv_max_interval)
            add(t.get(t.get("srv_max_interval") ? "srv_max_interval" : "srv_min_interval")->source(),
                "'srv_min_interval' must not be above 'srv_max_interval'");
    }

    // [[certificate]]: cert, key (paths relative to the config file's folder), domains.
    void load_certificate(const toml::table& t) {
        tls::CertificateSpec c;
        read_section(t, schema::certificate_section(), c);
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
        tls::StoreOptions opts;
        if (https_) opts.alpn.push_back("http/1.1");  // HTTPS listeners: browsers offer h2, http/1.1
        auto result = tls::CertStore::build(cert_specs_, opts);
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
        routing::RouteSpec r;
        read_section(t, schema::route_section(), r);
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
            cfg_->route_spec = spec_;
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
