// SASL client mechanisms for the load generator: PLAIN, ANONYMOUS and SCRAM-SHA-1 (RFC 5802),
// plus base64. No sockets; OpenSSL's libcrypto for SHA-1, HMAC and PBKDF2.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

namespace xs::loadgen::sasl {

std::string base64_encode(std::string_view in);
// Whitespace is ignored; nullopt on any other non-alphabet byte or bad padding.
std::optional<std::string> base64_decode(std::string_view in);

// The PLAIN message (RFC 4616) without base64: "\0user\0password".
std::string plain_message(std::string_view user, std::string_view password);

// A random printable nonce of `len` characters (RAND_bytes).
std::string make_nonce(std::size_t len = 24);

// SaltedPassword is the client's costly step (PBKDF2, thousands of iterations); thousands of
// simulated clients usually share a few accounts, so it is cached per (password, salt, i).
class SaltedPasswordCache {
public:
    std::string get(std::string_view password, std::string_view salt, unsigned iterations);
    std::size_t computed() const { return computed_; }

private:
    std::map<std::tuple<std::string, std::string, unsigned>, std::string> cache_;
    std::size_t computed_ = 0;
};

class ScramSha1Client {
public:
    // `user` is the authcid as typed; it is escaped (=2C, =3D) here. No authzid, no channel
    // binding ("n,,"), which every server must accept.
    ScramSha1Client(std::string user, std::string password, std::string client_nonce,
                    SaltedPasswordCache* cache = nullptr);

    // client-first-message, e.g. "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL".
    std::string client_first() const;

    // From server-first-message ("r=...,s=...,i=..."), the client-final-message with proof.
    // nullopt and `error` set when the message is malformed or the nonce does not extend ours.
    std::optional<std::string> client_final(std::string_view server_first, std::string* error);

    // Checks server-final-message "v=..." against the expected ServerSignature.
    bool verify_server_final(std::string_view server_final) const;

    static constexpr unsigned kMaxIterations = 1000000;  // refuse absurd work factors

private:
    std::string user_, password_, cnonce_;
    SaltedPasswordCache* cache_;
    std::string server_signature_;  // expected, raw bytes
};

// Helpers exposed for the tests.
std::string sha1(std::string_view data);
std::string hmac_sha1(std::string_view key, std::string_view data);
std::string pbkdf2_sha1(std::string_view password, std::string_view salt, unsigned iterations);
std::string scram_escape_user(std::string_view user);

}  // namespace xs::loadgen::sasl
