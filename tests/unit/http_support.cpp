#include "http_support.hpp"

namespace xs::test {

std::string describe_request(const routing::HttpRequestReader& r) {
    using routing::HeadStatus;
    std::string s;
    switch (r.status()) {
    case HeadStatus::NeedMore: s = "NeedMore"; break;
    case HeadStatus::Done: s = "Done"; break;
    case HeadStatus::Reject: s = "Reject " + std::to_string(r.reject_status()) + " " + r.detail(); break;
    }
    s += " seen=" + std::to_string(r.bytes_seen());
    if (r.status() != HeadStatus::Done) return s;
    const auto& h = r.head();
    s += " " + h.method + " " + h.target + " path=" + h.path + " q=" + h.query + " v=1." +
         std::to_string(h.version_minor) + " host=" + h.host + ":" + h.host_port +
         " ka=" + std::to_string(h.keep_alive) + " up=" + h.upgrade + " key=" + h.ws_key +
         " ver=" + h.ws_version + " cl=" + (h.has_content_length ? std::to_string(h.content_length) : "-") +
         " chunked=" + std::to_string(h.chunked) + " head=" + std::to_string(h.head_bytes);
    for (const auto& p : h.ws_protocols) s += " proto=" + p;
    for (const auto& c : h.connection) s += " conn=" + c;
    for (const auto& f : h.headers) s += "\n" + f.name + "|" + f.value + "|" + f.raw;
    return s;
}

std::string request_outcome(const std::vector<std::string_view>& pieces, std::size_t max_head,
                            std::size_t max_target) {
    routing::HttpRequestReader r(max_head, max_target);
    for (auto p : pieces) {
        auto st = r.feed(p);
        if (st != r.status()) return "feed() disagrees with status()";
    }
    return describe_request(r);
}

}  // namespace xs::test
