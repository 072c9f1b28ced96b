#include "config/discovered.hpp"

#include <algorithm>
#include <cctype>
#include <set>

namespace xs::config {

std::vector<std::string> member_names(const std::vector<SrvRecord>& records) {
    std::vector<std::string> hosts;
    std::map<std::string, std::set<uint16_t>> ports;
    for (const auto& r : records) {
        std::string h = r.target;
        if (!h.empty() && h.back() == '.') h.pop_back();
        for (char& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        ports[h].insert(r.port);
        hosts.push_back(std::move(h));
    }
    std::vector<std::string> names;
    for (std::size_t i = 0; i < records.size(); ++i)
        names.push_back(ports[hosts[i]].size() > 1 ? hosts[i] + ":" + std::to_string(records[i].port)
                                                   : hosts[i]);
    return names;
}

bool has_discovery(const Config& cfg) {
    return std::any_of(cfg.backends.begin(), cfg.backends.end(), [](const auto& b) { return !b.srv.empty(); });
}

Expanded expand_discovered(const Config& base, const Discovered& found) {
    Expanded out;
    auto cfg = std::make_shared<Config>(base);
    cfg->backends.clear();
    std::set<std::string> taken;
    for (const auto& b : base.backends)
        if (b.srv.empty()) taken.insert(b.name);
    std::map<std::string, std::vector<std::string>> group_members;  // group -> member names
    for (const auto& b : base.backends) {
        if (b.srv.empty()) {
            cfg->backends.push_back(b);
            continue;
        }
        std::vector<Member> members;
        if (auto it = found.find(b.name); it != found.end()) members = it->second;
        std::sort(members.begin(), members.end(), [](const Member& x, const Member& y) {
            if (x.priority != y.priority) return x.priority < y.priority;
            if (x.weight != y.weight) return x.weight > y.weight;
            return x.name < y.name;
        });
        auto& names = group_members[b.name];
        for (const auto& m : members) {
            std::string name = m.name + b.member_suffix;
            if (!taken.insert(name).second) {
                out.notes.push_back("backend '" + b.name + "': SRV target '" + m.name + "' left out: "
                                    "another backend is named '" + name + "' (a `member_suffix` tells "
                                    "two groups over the same targets apart)");
                continue;
            }
            BackendConfig mb = b;
            mb.name = m.name + b.member_suffix;
            mb.address_text = m.address_text;
            mb.address = m.address;
            mb.srv.clear();
            mb.group = b.name;
            cfg->backends.push_back(std::move(mb));
            names.push_back(name);
        }
        if (names.empty()) {
            BackendConfig placeholder = b;
            placeholder.srv.clear();
            placeholder.group = b.name;
            placeholder.drain = true;
            placeholder.check = CheckKind::None;
            cfg->backends.push_back(std::move(placeholder));
            names.push_back(b.name);
        }
    }
    routing::TableSpec spec = base.route_spec;
    spec.backends.clear();
    for (const auto& b : cfg->backends) spec.backends.push_back(b.name);
    for (auto& r : spec.routes) {
        std::vector<std::string> expanded;
        for (const auto& name : r.backends) {
            auto it = group_members.find(name);
            if (it == group_members.end()) expanded.push_back(name);
            else expanded.insert(expanded.end(), it->second.begin(), it->second.end());
        }
        r.backends = std::move(expanded);
    }
    auto result = routing::RouteTable::compile(spec);
    if (auto* errors = std::get_if<std::vector<routing::CompileError>>(&result)) {
        for (const auto& e : *errors) out.notes.push_back("routes with discovered backends: " + e.message);
        return out;
    }
    cfg->routes = std::get<std::shared_ptr<const routing::RouteTable>>(result);
    cfg->route_spec = std::move(spec);
    out.config = std::move(cfg);
    return out;
}

}  // namespace xs::config
