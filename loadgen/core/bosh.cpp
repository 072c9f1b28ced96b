#include "bosh.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <charconv>

#include "xml_stream.hpp"

namespace xs::loadgen::bosh {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string head(std::uint64_t rid, std::string_view sid) {
    std::string s = "<body rid='" + std::to_string(rid) + "'";
    if (!sid.empty()) s += " sid='" + xml::escape(sid) + "'";
    return s;
}

std::string with_payload(std::string s, std::string_view payload) {
    s += " xmlns='";
    s += kNsHttpBind;
    if (payload.empty()) return s + "'/>";
    s += "'>";
    s += payload;
    return s + "</body>";
}

int to_int(std::string_view v, int dflt) {
    int x = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    return ec == std::errc() && p == v.data() + v.size() && x >= 0 ? x : dflt;
}

}  // namespace

std::string creation_body(std::uint64_t rid, const SessionParams& p) {
    std::string s = head(rid, {});
    s += " to='" + xml::escape(p.to) + "' xml:lang='" + xml::escape(p.lang) + "' wait='" +
         std::to_string(p.wait) + "' hold='" + std::to_string(p.hold) +
         "' ver='1.6' xmpp:version='1.0' xmlns='";
    s += kNsHttpBind;
    s += "' xmlns:xmpp='";
    s += kNsXbosh;
    return s + "'/>";
}

std::string payload_body(std::uint64_t rid, std::string_view sid, std::string_view payload) {
    return with_payload(head(rid, sid), payload);
}

std::string restart_body(std::uint64_t rid, std::string_view sid, const SessionParams& p) {
    std::string s = head(rid, sid);
    s += " to='" + xml::escape(p.to) + "' xml:lang='" + xml::escape(p.lang) +
         "' xmpp:restart='true' xmlns='";
    s += kNsHttpBind;
    s += "' xmlns:xmpp='";
    s += kNsXbosh;
    return s + "'/>";
}

std::string terminate_body(std::uint64_t rid, std::string_view sid, std::string_view payload) {
    return with_payload(head(rid, sid) + " type='terminate'", payload);
}

std::string post_request(std::string_view target, std::string_view host, std::string_view body) {
    std::string s;
    s.reserve(160 + target.size() + host.size() + body.size());
    s += "POST ";
    s += target;
    s += " HTTP/1.1\r\nHost: ";
    s += host;
    s += "\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: ";
    s += std::to_string(body.size());
    s += "\r\n\r\n";
    s += body;
    return s;
}

std::uint64_t initial_rid() {
    std::uint32_t x = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&x), sizeof x) != 1) x = 0x5a5a5a5au;
    return (1u << 20) + x % ((1ull << 32) - (1u << 20));
}

std::string_view Body::attr(std::string_view name) const {
    for (const auto& [k, v] : attrs)
        if (k == name) return v;
    return {};
}

bool Body::has(std::string_view name) const {
    for (const auto& kv : attrs)
        if (kv.first == name) return true;
    return false;
}

std::optional<Body> read_body(std::string_view t, std::string* error) {
    auto bad = [&](std::string why) -> std::optional<Body> {
        if (error) *error = std::move(why);
        return std::nullopt;
    };
    std::size_t i = 0;
    if (t.starts_with("\xEF\xBB\xBF")) i = 3;
    while (i < t.size() && is_space(t[i])) ++i;
    if (t.substr(i).starts_with("<?")) {
        std::size_t e = t.find("?>", i);
        if (e == std::string_view::npos) return bad("unterminated XML declaration");
        i = e + 2;
        while (i < t.size() && is_space(t[i])) ++i;
    }
    if (i >= t.size() || t[i] != '<') return bad(t.empty() ? "empty response body" : "no root element");
    std::size_t n = ++i;
    while (n < t.size() && !is_space(t[n]) && t[n] != '/' && t[n] != '>') ++n;
    std::string_view qname = t.substr(i, n - i);
    std::size_t colon = qname.find(':');
    std::string_view prefix = colon == std::string_view::npos ? std::string_view() : qname.substr(0, colon);
    if (qname.substr(colon == std::string_view::npos ? 0 : colon + 1) != "body")
        return bad("root element is <" + std::string(qname.substr(0, 40)) + ">, not <body>");
    Body b;
    i = n;
    bool empty = false;
    for (;;) {
        while (i < t.size() && is_space(t[i])) ++i;
        if (i >= t.size()) return bad("unterminated <body> tag");
        if (t[i] == '>') break;
        if (t[i] == '/') {
            if (i + 1 >= t.size() || t[i + 1] != '>') return bad("malformed <body> tag");
            empty = true;
            ++i;
            break;
        }
        std::size_t a = i;
        while (i < t.size() && !is_space(t[i]) && t[i] != '=' && t[i] != '>' && t[i] != '/') ++i;
        std::string name(t.substr(a, i - a));
        while (i < t.size() && is_space(t[i])) ++i;
        if (name.empty() || i >= t.size() || t[i] != '=') return bad("malformed attribute in <body>");
        ++i;
        while (i < t.size() && is_space(t[i])) ++i;
        if (i >= t.size() || (t[i] != '\'' && t[i] != '"')) return bad("unquoted attribute in <body>");
        char q = t[i++];
        std::size_t e = t.find(q, i);
        if (e == std::string_view::npos) return bad("unterminated attribute in <body>");
        std::string value;
        if (!xml::decode_entities(t.substr(i, e - i), value)) return bad("bad reference in <body>");
        b.attrs.emplace_back(std::move(name), std::move(value));
        i = e + 1;
    }
    std::string ns_attr = prefix.empty() ? "xmlns" : "xmlns:" + std::string(prefix);
    if (b.attr(ns_attr) != kNsHttpBind) return bad("<body> not in the httpbind namespace");
    std::size_t after = i + 1;  // past the start tag's '>'
    if (empty) {
        for (std::size_t k = after; k < t.size(); ++k)
            if (!is_space(t[k])) return bad("content after <body/>");
        return b;
    }
    std::size_t end = t.size();
    while (end > after && is_space(t[end - 1])) --end;
    std::string close = "</" + std::string(qname);
    std::size_t c = t.rfind(close, end);
    if (c == std::string_view::npos || c < after) return bad("no </body>");
    std::size_t k = c + close.size();
    while (k < end && is_space(t[k])) ++k;
    if (k + 1 != end || t[k] != '>') return bad("content after </body>");
    b.inner = t.substr(after, c - after);
    return b;
}

Session::Session(SessionParams p, std::uint64_t first_rid, std::size_t max_requests)
    : p_(std::move(p)), rid_(first_rid), max_(max_requests ? max_requests : 1) {}

std::size_t Session::limit() const {
    if (!created()) return 1;
    std::size_t server = requests_ > 0 ? static_cast<std::size_t>(requests_) : 2;
    return std::min(max_, server);
}

void Session::queue(std::string_view element) {
    if (!term_sent_) queued_ += element;
}

void Session::restart() { restart_ = true; }

void Session::terminate() { term_ = true; }

std::optional<Session::Request> Session::next() {
    if (failed_ || terminated_ || term_sent_) return std::nullopt;
    Request r{rid_, {}};
    if (!creation_sent_) {
        creation_sent_ = true;
        r.body = creation_body(rid_, p_);
        out_.push_back({rid_++, true, false, {}});
        return r;
    }
    if (!created() || out_.size() >= limit()) return std::nullopt;
    if (restart_) {
        restart_ = false;
        r.body = restart_body(rid_, sid_, p_);
    } else if (term_) {
        term_sent_ = true;
        r.body = terminate_body(rid_, sid_, queued_);
        queued_.clear();
    } else if (!queued_.empty() || out_.empty()) {
        r.body = payload_body(rid_, sid_, queued_);
        queued_.clear();
    } else {
        return std::nullopt;
    }
    out_.push_back({rid_++, false, false, {}});
    return r;
}

Session::Status Session::fail(std::string e) {
    failed_ = true;
    error_ = std::move(e);
    return Status::Error;
}

Session::Status Session::take(Out& o, std::string& inner) {
    std::string err;
    auto b = read_body(o.body, &err);
    if (!b) return fail("rid " + std::to_string(o.rid) + ": " + err);
    std::string_view type = b->attr("type");
    if (o.creation && type != "terminate") {
        sid_ = std::string(b->attr("sid"));
        if (sid_.empty()) return fail("session creation answered without a sid");
        requests_ = to_int(b->attr("requests"), 2);
        wait_ = to_int(b->attr("wait"), p_.wait);
        inactivity_ = to_int(b->attr("inactivity"), 0);
    }
    inner.append(b->inner);
    if (type == "terminate") {
        terminated_ = true;
        condition_ = std::string(b->attr("condition"));
        return Status::Terminated;
    }
    if (type == "error") return fail("type='error' answer" + (b->has("condition") ? " (" + std::string(b->attr("condition")) + ")" : std::string()));
    return Status::Ok;
}

Session::Status Session::on_response(std::uint64_t rid, std::string body, std::string& inner) {
    if (failed_) return Status::Error;
    if (terminated_) return Status::Terminated;
    Out* o = nullptr;
    for (Out& x : out_)
        if (x.rid == rid && !x.answered) o = &x;
    if (!o) return fail("an answer to rid " + std::to_string(rid) + ", which is not out");
    o->answered = true;
    o->body = std::move(body);
    while (!out_.empty() && out_.front().answered) {
        Status s = take(out_.front(), inner);
        out_.pop_front();
        if (s != Status::Ok) {
            if (s == Status::Terminated) out_.clear();
            return s;
        }
    }
    return Status::Ok;
}

}  // namespace xs::loadgen::bosh
