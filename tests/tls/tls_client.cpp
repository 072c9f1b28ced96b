#include "tls_client.hpp"

#include <openssl/err.h>

#include <catch2/catch.hpp>
#include <random>

namespace xs::tls::test {

Client::Client(const ClientOptions& o) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    REQUIRE(ctx_);
    if (o.min_version) SSL_CTX_set_min_proto_version(ctx_, o.min_version);
    if (o.max_version) SSL_CTX_set_max_proto_version(ctx_, o.max_version);
    if (o.max_version && o.max_version < TLS1_2_VERSION) {
        // OpenSSL 3's default security level refuses TLS 1.0/1.1 on the client side already.
        REQUIRE(SSL_CTX_set_cipher_list(ctx_, "DEFAULT:@SECLEVEL=0") == 1);
    }
    if (!o.ciphers.empty()) REQUIRE(SSL_CTX_set_cipher_list(ctx_, o.ciphers.c_str()) == 1);
    if (!o.ca_file.empty()) {
        REQUIRE(SSL_CTX_load_verify_locations(ctx_, o.ca_file.c_str(), nullptr) == 1);
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    }
    ssl_ = SSL_new(ctx_);
    REQUIRE(ssl_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_connect_state(ssl_);
    if (!o.sni.empty()) REQUIRE(SSL_set_tlsext_host_name(ssl_, o.sni.c_str()) == 1);
    if (!o.verify_host.empty()) REQUIRE(SSL_set1_host(ssl_, o.verify_host.c_str()) == 1);
    if (!o.alpn.empty()) {
        std::string wire;
        for (const auto& p : o.alpn) wire += static_cast<char>(p.size()) + p;
        REQUIRE(SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(wire.data()),
                                    static_cast<unsigned>(wire.size())) == 0);
    }
    if (o.session) REQUIRE(SSL_set_session(ssl_, o.session) == 1);
}

Client::~Client() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
}

std::string Client::take_output() {
    std::string s(static_cast<std::size_t>(BIO_ctrl_pending(out_)), '\0');
    if (!s.empty()) BIO_read(out_, s.data(), static_cast<int>(s.size()));
    return s;
}

void Client::give_input(std::string_view bytes) {
    if (!bytes.empty()) BIO_write(in_, bytes.data(), static_cast<int>(bytes.size()));
}

int Client::step() {
    ERR_clear_error();
    int rc = SSL_do_handshake(ssl_);
    return rc == 1 ? 0 : SSL_get_error(ssl_, rc);
}

std::string Client::read_all() {
    std::string plain;
    char buf[16384];
    for (;;) {
        ERR_clear_error();
        std::size_t n = 0;
        int rc = SSL_read_ex(ssl_, buf, sizeof buf, &n);
        if (rc == 1) {
            plain.append(buf, n);
            continue;
        }
        if (SSL_get_error(ssl_, rc) == SSL_ERROR_ZERO_RETURN) closed_ = true;
        return plain;
    }
}

void Client::write(std::string_view plain) {
    while (!plain.empty()) {
        std::size_t n = 0;
        REQUIRE(SSL_write_ex(ssl_, plain.data(), plain.size(), &n) == 1);
        plain.remove_prefix(n);
    }
}

namespace {

// Feeds `bytes` to the server whole or in random pieces; returns the server's output.
std::string feed(TlsStream& s, std::string_view bytes, std::string& plain, std::size_t split,
                 std::mt19937& rng) {
    std::string out;
    if (split == 0) {
        s.feed(bytes, plain, out);
        return out;
    }
    std::uniform_int_distribution<std::size_t> piece(1, split);
    while (!bytes.empty()) {
        std::size_t n = std::min(piece(rng), bytes.size());
        s.feed(bytes.substr(0, n), plain, out);
        bytes.remove_prefix(n);
    }
    return out;
}

}  // namespace

PumpResult handshake(Client& c, TlsStream& s, std::size_t split, unsigned seed) {
    std::mt19937 rng(seed);
    PumpResult r;
    for (int round = 0; round < 20; ++round) {
        r.client_error = c.step();
        std::string up = c.take_output();
        std::string down = feed(s, up, r.server_plain, split, rng);
        c.give_input(down);
        bool quiet = up.empty() && down.empty();
        if (quiet || s.state() == TlsState::Failed) {
            if (!down.empty()) r.client_error = c.step();  // let the client read the alert
            break;
        }
    }
    r.client_done = c.done();
    r.server = s.state();
    return r;
}

std::string to_server(Client& c, TlsStream& s, std::string_view plain, std::size_t split,
                      unsigned seed) {
    std::mt19937 rng(seed);
    c.write(plain);
    std::string got;
    std::string back = feed(s, c.take_output(), got, split, rng);
    c.give_input(back);
    return got;
}

std::string to_client(TlsStream& s, Client& c, std::string_view plain) {
    std::string out;
    REQUIRE(s.write(plain, out));
    c.give_input(out);
    return c.read_all();
}

}  // namespace xs::tls::test
