#include "transport.hpp"

#include "core/stanzas.hpp"

namespace xs::loadgen {

namespace {

class TcpTransport final : public Transport {
public:
    std::string handshake() override { return {}; }
    In input(const char* data, std::size_t n, xml::StreamParser& parser, std::string&) override {
        parser.feed(data, n);
        return In::Ok;
    }
    std::string stream_open(std::string_view domain) override { return stanzas::stream_header(domain); }
    std::string stream_close() override { return stanzas::stream_close(); }
    std::string_view wrap(std::string_view xml) override { return xml; }
};

// The stanzas of an RFC 7395 stream reach the parser as if they were in a <stream:stream>:
// the server's <open/> becomes a stream header, its <close/> the stream's end.
constexpr std::string_view kSyntheticHeader =
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

class WebSocketTransport final : public Transport {
public:
    explicit WebSocketTransport(const TransportSpec& s) : spec_(s) {}

    std::string handshake() override {
        key_ = ws::make_key();
        return ws::upgrade_request(spec_.ws_target, spec_.ws_host, key_);
    }

    In input(const char* data, std::size_t n, xml::StreamParser& parser, std::string& reply) override {
        In result = In::Ok;
        if (!upgraded_) {
            auto r = upgrade_.feed(std::string_view(data, n), key_);
            if (r == ws::UpgradeReader::Result::NeedMore) return In::Ok;
            if (r == ws::UpgradeReader::Result::Error) return fail(upgrade_.kind(), upgrade_.error());
            upgraded_ = true;
            result = In::Established;
            decoder_.feed(upgrade_.rest());
            upgrade_.rest().clear();
        } else {
            decoder_.feed(data, n);
        }
        for (;;) {
            switch (decoder_.next()) {
                case ws::FrameDecoder::Event::None:
                    return result;
                case ws::FrameDecoder::Event::Error:
                    return fail("websocket:protocol", decoder_.error());
                case ws::FrameDecoder::Event::Binary:
                    return fail("websocket:protocol", "binary message");
                case ws::FrameDecoder::Event::Ping:
                    reply += ws::encode_client_frame(ws::Opcode::Pong, decoder_.payload());
                    continue;
                case ws::FrameDecoder::Event::Pong:
                    continue;
                case ws::FrameDecoder::Event::Close:
                    if (!close_sent_) {
                        close_sent_ = true;
                        reply += ws::encode_client_frame(ws::Opcode::Close, ws::close_payload(1000));
                    }
                    peer_closed_ = true;
                    return result;
                case ws::FrameDecoder::Event::Text: {
                    const std::string& m = decoder_.payload();
                    switch (ws::classify(m)) {
                        case ws::Framing::Open: parser.feed(kSyntheticHeader); break;
                        case ws::Framing::Close: parser.feed(stanzas::stream_close()); break;
                        case ws::Framing::Stanza: parser.feed(m); break;
                    }
                    continue;
                }
            }
        }
    }

    bool peer_closed() const override { return peer_closed_; }
    std::string stream_open(std::string_view domain) override { return ws::open_element(domain); }
    std::string stream_close() override { return ws::close_element(); }
    std::string_view wrap(std::string_view xml) override {
        out_ = ws::encode_client_frame(ws::Opcode::Text, ws::with_client_ns(xml));
        return out_;
    }

private:
    TransportSpec spec_;
    std::string key_;
    ws::UpgradeReader upgrade_;
    ws::FrameDecoder decoder_;
    bool upgraded_ = false;
    bool peer_closed_ = false;
    bool close_sent_ = false;
    std::string out_;
};

}  // namespace

std::unique_ptr<Transport> make_transport(const TransportSpec& spec) {
    if (spec.kind == TransportKind::WebSocket) return std::make_unique<WebSocketTransport>(spec);
    return std::make_unique<TcpTransport>();
}

}  // namespace xs::loadgen
