// A real OpenSSL client over memory BIOs, and a pump that runs it against a TlsStream with every
// byte passing through the stream's feed()/write() (optionally in random splits).
#pragma once
#include <openssl/ssl.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "tls/tls_stream.hpp"

namespace xs::tls::test {

struct ClientOptions {
    std::string ca_file;                 // trust this CA and verify the chain; "" = no verification
    std::string verify_host;             // check the certificate against this name; "" = skip
    std::string sni;                     // "" = no SNI
    std::vector<std::string> alpn;
    int min_version = 0;                 // e.g. TLS1_VERSION; 0 = OpenSSL's default
    int max_version = 0;
    std::string ciphers;                 // TLS 1.2 cipher list; "" = default
    SSL_SESSION* session = nullptr;      // resume this session
};

class Client {
public:
    explicit Client(const ClientOptions& o);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    SSL* ssl() const { return ssl_; }
    std::string take_output();                // ciphertext the client wants sent
    void give_input(std::string_view bytes);  // ciphertext from the server
    int step();                               // SSL_do_handshake; returns SSL_get_error or 0 when done
    bool done() const { return SSL_is_init_finished(ssl_) == 1; }
    std::string read_all();                   // decrypt what has arrived (processes tickets too)
    void write(std::string_view plain);       // encrypt into the output
    bool peer_closed() const { return closed_; }
    long verify_result() const { return SSL_get_verify_result(ssl_); }
    SSL_SESSION* session() const { return SSL_get1_session(ssl_); }  // caller frees

private:
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    BIO* in_ = nullptr;   // from the server
    BIO* out_ = nullptr;  // to the server
    bool closed_ = false;
};

struct PumpResult {
    bool client_done = false;
    int client_error = 0;        // last SSL_get_error of the client's handshake (0 = done)
    TlsState server = TlsState::Handshaking;
    std::string server_plain;    // application data the server decrypted on the way
};

// Runs the handshake to its end (success or failure on either side). `split` > 0 feeds the server
// in pieces of 1..split bytes (seeded); 0 feeds each flight whole.
PumpResult handshake(Client& c, TlsStream& s, std::size_t split = 0, unsigned seed = 1);

// Client -> server plaintext through both engines; returns what the server decrypted.
std::string to_server(Client& c, TlsStream& s, std::string_view plain, std::size_t split = 0,
                      unsigned seed = 1);
// Server -> client plaintext; returns what the client decrypted.
std::string to_client(TlsStream& s, Client& c, std::string_view plain);

}  // namespace xs::tls::test
