#include "transport.hpp"

#include "core/stanzas.hpp"
#include "core/websocket.hpp"

namespace xs::loadgen {

namespace {

class TcpTransport final : public Transport {
public:
    TcpTransport() : Transport(1) {}
    const char* name() const override { return "tcp"; }
    In connected(std::size_t) override { return In::Established; }
    In input(std::size_t, const char* data, std::size_t n, xml::StreamParser& parser) override {
        parser.feed(data, n);
        return In::Ok;
    }
    In eof(std::size_t, xml::StreamParser&) override { return In::Ended; }
    void open(std::string_view domain) override { out_[0].bytes += stanzas::stream_header(domain); }
    void close() override { out_[0].bytes += stanzas::stream_close(); }
    void send(std::string_view xml) override { out_[0].bytes += xml; }
};

class WebSocketTransport final : public Transport {
public:
    explicit WebSocketTransport(const TransportSpec& s) : Transport(1), spec_(s) {}
    const char* name() const override { return "websocket"; }

    In connected(std::size_t) override {
        key_ = ws::make_key();
        out_[0].bytes += ws::upgrade_request(spec_.http_target, spec_.http_host, key_);
        return In::Ok;
    }

    In input(std::size_t, const char* data, std::size_t n, xml::StreamParser& parser) override {
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
        std::string& reply = out_[0].bytes;
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

    In eof(std::size_t, xml::StreamParser&) override { return In::Ended; }
    bool peer_closed() const override { return peer_closed_; }
    void open(std::string_view domain) override { frame(ws::open_element(domain)); }
    void close() override { frame(ws::close_element()); }
    void send(std::string_view xml) override { frame(ws::with_client_ns(xml)); }

private:
    void frame(std::string_view text) { out_[0].bytes += ws::encode_client_frame(ws::Opcode::Text, text); }

    TransportSpec spec_;
    std::string key_;
    ws::UpgradeReader upgrade_;
    ws::FrameDecoder decoder_;
    bool upgraded_ = false;
    bool peer_closed_ = false;
    bool close_sent_ = false;
};

}  // namespace

std::unique_ptr<Transport> make_transport(const TransportSpec& spec) {
    switch (spec.kind) {
        case TransportKind::WebSocket: return std::make_unique<WebSocketTransport>(spec);
        case TransportKind::Bosh: return make_bosh_transport(spec);
        case TransportKind::Tcp: break;
    }
    return std::make_unique<TcpTransport>();
}

}  // namespace xs::loadgen
