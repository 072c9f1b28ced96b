// The XMPP front doors: a plain stream header (passthrough, or TLS passed through with
// STARTTLS inside), STARTTLS terminated at the proxy, and Direct TLS terminated at the proxy.
#pragma once
#include <memory>
#include <string>

#include "routing/starttls.hpp"
#include "routing/stream_header_sniffer.hpp"
#include "session/front_door.hpp"

namespace xs::session {

// Reads one stream header (the first, or the one restarted inside TLS) and checks its content
// namespace against the listener; keeps every byte for the replay.
class HeaderReader {
public:
    explicit HeaderReader(const DoorContext& ctx);
    Verdict feed(std::string_view bytes);
    // The stream error for this stream; `header` false when the proxy already sent its own.
    std::string refusal(routing::StreamCondition c, std::string_view domain, std::string_view detail,
                        bool header) const;
    const routing::StreamHeader& header() const { return sniffer_.header(); }
    std::string& bytes() { return replay_; }

private:
    DoorContext ctx_;
    routing::StreamHeaderSniffer sniffer_;
    std::string replay_;
    std::string content_ns_;  // once the header is complete
};

class PlainXmppDoor final : public FrontDoor {
public:
    explicit PlainXmppDoor(const DoorContext& ctx) : reader_(ctx) {}
    std::string_view name() const override { return "xmpp"; }
    Verdict tls_ready(std::string_view) override { return {}; }  // never starts TLS
    Verdict feed(std::string_view bytes) override { return reader_.feed(bytes); }
    std::string refusal(routing::StreamCondition c, std::string_view domain,
                        std::string_view detail) const override {
        return reader_.refusal(c, domain, detail, true);
    }

private:
    HeaderReader reader_;
};

// STARTTLS offered and required: the client's first header is answered with the proxy's own
// header and features, <starttls/> with <proceed/>; then the handshake; then the restarted
// header inside TLS decides the route.
class StartTlsDoor final : public FrontDoor {
public:
    explicit StartTlsDoor(const DoorContext& ctx) : ctx_(ctx), outer_(ctx) {}
    std::string_view name() const override { return "starttls"; }
    Verdict feed(std::string_view bytes) override;
    std::string_view before_tls(std::string_view raw) override { return reader_.tls_bytes(raw); }
    Verdict tls_ready(std::string_view alpn) override;
    std::string refusal(routing::StreamCondition c, std::string_view domain,
                        std::string_view detail) const override;

private:
    enum class Phase { Header, Negotiating, Handshaking, Inner };
    Verdict on_negotiation(std::string_view bytes, Verdict v);

    DoorContext ctx_;
    Phase phase_ = Phase::Header;
    HeaderReader outer_;                    // Header
    routing::StartTlsReader reader_;        // Negotiating, Handshaking (whitespace before TLS)
    std::unique_ptr<HeaderReader> inner_;   // Inner
    std::string domain_;                    // normalised 'to' of the first header
};

// Direct TLS (XEP-0368) terminated here: TLS from the first byte, then the stream header.
class DirectTlsDoor final : public FrontDoor {
public:
    explicit DirectTlsDoor(const DoorContext& ctx) : ctx_(ctx) {}
    std::string_view name() const override { return "direct-tls"; }
    Verdict start() override;
    Verdict feed(std::string_view bytes) override;
    Verdict tls_ready(std::string_view alpn) override;
    std::string refusal(routing::StreamCondition c, std::string_view domain,
                        std::string_view detail) const override;

private:
    DoorContext ctx_;
    std::unique_ptr<HeaderReader> inner_;  // once TLS is up
};

}  // namespace xs::session
