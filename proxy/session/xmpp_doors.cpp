#include "session/xmpp_doors.hpp"

#include <algorithm>

#include "config/config.hpp"
#include "routing/stream_error.hpp"
#include "session/host.hpp"
#include "session/route_lookup.hpp"
#include "session/http_door.hpp"
#include "session/sni_door.hpp"

namespace xs::session {

using routing::SniffStatus;
using routing::StreamCondition;

namespace {

Verdict refuse(StreamCondition c, std::string domain, std::string detail) {
    Verdict v;
    v.step = Step::Refuse;
    v.condition = c;
    v.domain = std::move(domain);
    v.detail = std::move(detail);
    return v;
}

}  // namespace

HeaderReader::HeaderReader(const DoorContext& ctx) : ctx_(ctx), sniffer_(ctx.cfg.proxy.max_header_bytes) {}

Verdict HeaderReader::feed(std::string_view bytes) {
    replay_.append(bytes);
    switch (sniffer_.feed(bytes)) {
        case SniffStatus::NeedMore:
            return {};
        case SniffStatus::TlsClientHello:
            return close_verdict(EndReason::NotXmpp, "TLS ClientHello on a plaintext listener");
        case SniffStatus::Reject:
            return refuse(sniffer_.condition(), "", sniffer_.detail());
        case SniffStatus::Done:
            break;
    }
    const routing::StreamHeader& h = sniffer_.header();
    content_ns_ = h.content_ns;
    const auto& ns = ctx_.listener.namespaces;
    if (std::find(ns.begin(), ns.end(), h.content_ns) == ns.end())
        return refuse(StreamCondition::InvalidNamespace, "",
                      "content namespace '" + h.content_ns + "' is not served on this listener");
    return route_verdict(h.to, h.has_to, std::move(replay_));
}

std::string HeaderReader::refusal(StreamCondition c, std::string_view domain, std::string_view detail,
                                  bool header) const {
    routing::StreamErrorSpec spec;
    spec.condition = c;
    spec.from_domain = domain;
    if (!content_ns_.empty()) spec.content_ns = content_ns_;
    spec.text = detail;
    if (c == StreamCondition::SeeOtherHost) spec.other_host = ctx_.listener.see_other_host;
    spec.header = header;
    return routing::stream_error_bytes(spec);
}

// --- STARTTLS ---------------------------------------------------------------------------------

Verdict StartTlsDoor::feed(std::string_view bytes) {
    switch (phase_) {
        case Phase::Header: {
            Verdict v = outer_.feed(bytes);
            if (v.step != Step::Route) return v;
            // The header before TLS: only check that the domain is routed here; the backend sees
            // just the stream restarted inside TLS.
            Lookup l = lookup_route(ctx_.cfg, ctx_.listener, v.key.match, v.key.has_match);
            if (!l.decision) return refuse(StreamCondition::HostUnknown, l.domain, l.why);
            domain_ = std::move(l.domain);
            const routing::StreamHeader& h = outer_.header();
            std::string rest = v.replay.substr(h.consumed);
            Verdict next;
            next.reply = routing::starttls_offer(domain_, h.content_ns, ctx_.host.stream_id());
            phase_ = Phase::Negotiating;
            return on_negotiation(rest, std::move(next));
        }
        case Phase::Negotiating:
            return on_negotiation(bytes, {});
        case Phase::Handshaking:
            return {};  // the session hands ciphertext to TLS, not here
        case Phase::Inner:
            return inner_->feed(bytes);
    }
    return {};
}

Verdict StartTlsDoor::on_negotiation(std::string_view bytes, Verdict v) {
    if (bytes.empty()) return v;
    switch (reader_.feed(bytes)) {
        case routing::StartTlsStatus::NeedMore:
            return v;
        case routing::StartTlsStatus::Reject: {
            Verdict r = refuse(reader_.condition(), domain_, reader_.detail());
            r.reply = std::move(v.reply);
            return r;
        }
        case routing::StartTlsStatus::Proceed:
            break;
    }
    v.reply += routing::starttls_proceed();
    v.step = Step::StartTls;
    v.sni_fallback = domain_;
    phase_ = Phase::Handshaking;
    return v;
}

Verdict StartTlsDoor::tls_ready(std::string_view alpn) {
    phase_ = Phase::Inner;
    inner_ = std::make_unique<HeaderReader>(ctx_);
    return alpn_verdict(alpn, "xmpp-client", "XMPP");
}

std::string StartTlsDoor::refusal(StreamCondition c, std::string_view domain, std::string_view detail) const {
    switch (phase_) {
        case Phase::Header: return outer_.refusal(c, domain, detail, true);
        case Phase::Negotiating: return outer_.refusal(c, domain, detail, false);  // our header is out
        case Phase::Handshaking: return {};  // no way to speak XML mid-handshake
        case Phase::Inner: return inner_->refusal(c, domain, detail, true);  // restarted stream
    }
    return {};
}

// --- Direct TLS, terminated ---------------------------------------------------------------------

Verdict DirectTlsDoor::start() {
    Verdict v;
    v.step = Step::StartTls;
    return v;
}

Verdict DirectTlsDoor::tls_ready(std::string_view alpn) {
    inner_ = std::make_unique<HeaderReader>(ctx_);
    return alpn_verdict(alpn, "xmpp-client", "XMPP");
}

Verdict DirectTlsDoor::feed(std::string_view bytes) {
    if (!inner_) return {};
    return inner_->feed(bytes);
}

std::string DirectTlsDoor::refusal(StreamCondition c, std::string_view domain, std::string_view detail) const {
    if (!inner_) return {};
    return inner_->refusal(c, domain, detail, true);
}

// --- which door -----------------------------------------------------------------------------

std::unique_ptr<FrontDoor> make_front_door(const DoorContext& ctx) {
    const auto& l = ctx.listener;
    if (l.protocol == config::Protocol::Http) return std::make_unique<HttpDoor>(ctx);
    if (l.tls == config::TlsMode::Terminate)
        return l.direct_tls ? std::unique_ptr<FrontDoor>(std::make_unique<DirectTlsDoor>(ctx))
                            : std::make_unique<StartTlsDoor>(ctx);
    if (l.direct_tls) return std::make_unique<SniDoor>(ctx);
    return std::make_unique<PlainXmppDoor>(ctx);
}

}  // namespace xs::session
