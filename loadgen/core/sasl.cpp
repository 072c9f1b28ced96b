#include "sasl.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <stdexcept>

namespace xs::loadgen::sasl {

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

std::string xor_bytes(std::string_view a, std::string_view b) {
    std::string out(a);
    for (std::size_t i = 0; i < out.size() && i < b.size(); ++i)
        out[i] = static_cast<char>(out[i] ^ b[i]);
    return out;
}

// "k=v,k=v" -> the value of key `k` (one letter), or nullopt.
std::optional<std::string_view> scram_attr(std::string_view msg, char k) {
    std::size_t i = 0;
    while (i < msg.size()) {
        std::size_t comma = msg.find(',', i);
        std::string_view part = msg.substr(i, comma == std::string_view::npos ? msg.npos : comma - i);
        if (part.size() >= 2 && part[0] == k && part[1] == '=') return part.substr(2);
        if (comma == std::string_view::npos) break;
        i = comma + 1;
    }
    return std::nullopt;
}

}  // namespace

std::string base64_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(in[k]); };
    for (; i + 2 < in.size(); i += 3) {
        unsigned v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += kB64[(v >> 6) & 63];
        out += kB64[v & 63];
    }
    if (i + 1 == in.size()) {
        unsigned v = byte(i) << 16;
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == in.size()) {
        unsigned v = (byte(i) << 16) | (byte(i + 1) << 8);
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += kB64[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
    std::string out;
    unsigned acc = 0;
    int bits = 0;
    int pad = 0;
    std::size_t chars = 0;
    for (char c : in) {
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') {
            ++pad;
            ++chars;
            continue;
        }
        if (pad) return std::nullopt;  // data after padding
        int v = b64_value(c);
        if (v < 0) return std::nullopt;
        ++chars;
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xFF);
        }
    }
    if (chars % 4 != 0 || pad > 2) return std::nullopt;
    if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;  // non-canonical trailing bits
    return out;
}

std::string plain_message(std::string_view user, std::string_view password) {
    std::string m;
    m += '\0';
    m += user;
    m += '\0';
    m += password;
    return m;
}

std::string make_nonce(std::size_t len) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string raw(len, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(len)) != 1)
        throw std::runtime_error("RAND_bytes failed");
    for (char& c : raw) c = kAlphabet[static_cast<unsigned char>(c) % 64];
    return raw;
}

std::string sha1(std::string_view data) {
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
    return std::string(reinterpret_cast<char*>(md), sizeof md);
}

std::string hmac_sha1(std::string_view key, std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
    return std::string(reinterpret_cast<char*>(md), len);
}

std::string pbkdf2_sha1(std::string_view password, std::string_view salt, unsigned iterations) {
    unsigned char out[SHA_DIGEST_LENGTH];
    if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                          reinterpret_cast<const unsigned char*>(salt.data()),
                          static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha1(),
                          sizeof out, out) != 1)
        throw std::runtime_error("PBKDF2 failed");
    return std::string(reinterpret_cast<char*>(out), sizeof out);
}

std::string scram_escape_user(std::string_view user) {
    std::string out;
    for (char c : user) {
        if (c == '=') out += "=3D";
        else if (c == ',') out += "=2C";
        else out += c;
    }
    return out;
}

std::string SaltedPasswordCache::get(std::string_view password, std::string_view salt,
                                     unsigned iterations) {
    auto key = std::make_tuple(std::string(password), std::string(salt), iterations);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    ++computed_;
    std::string v = pbkdf2_sha1(password, salt, iterations);
    cache_.emplace(std::move(key), v);
    return v;
}

ScramSha1Client::ScramSha1Client(std::string user, std::string password, std::string client_nonce,
                                 SaltedPasswordCache* cache)
    : user_(std::move(user)), password_(std::move(password)), cnonce_(std::move(client_nonce)),
      cache_(cache) {}

std::string ScramSha1Client::client_first() const {
    return "n,,n=" + scram_escape_user(user_) + ",r=" + cnonce_;
}

std::optional<std::string> ScramSha1Client::client_final(std::string_view server_first,
                                                         std::string* error) {
    auto fail = [&](const char* why) -> std::optional<std::string> {
        if (error) *error = why;
        return std::nullopt;
    };
    if (server_first.starts_with("m=")) return fail("server requires an unsupported extension");
    auto r = scram_attr(server_first, 'r');
    auto s = scram_attr(server_first, 's');
    auto i = scram_attr(server_first, 'i');
    if (!r || !s || !i) return fail("server-first-message lacks r, s or i");
    if (!r->starts_with(cnonce_) || r->size() == cnonce_.size())
        return fail("server nonce does not extend the client nonce");
    auto salt = base64_decode(*s);
    if (!salt || salt->empty()) return fail("bad salt");
    unsigned iterations = 0;
    if (i->empty() || i->size() > 7) return fail("bad iteration count");
    for (char c : *i) {
        if (c < '0' || c > '9') return fail("bad iteration count");
        iterations = iterations * 10 + static_cast<unsigned>(c - '0');
    }
    if (iterations == 0 || iterations > kMaxIterations) return fail("iteration count out of range");

    std::string salted = cache_ ? cache_->get(password_, *salt, iterations)
                                : pbkdf2_sha1(password_, *salt, iterations);
    std::string client_key = hmac_sha1(salted, "Client Key");
    std::string stored_key = sha1(client_key);
    std::string without_proof = "c=biws,r=" + std::string(*r);  // biws = base64("n,,")
    std::string client_first_bare = "n=" + scram_escape_user(user_) + ",r=" + cnonce_;
    std::string auth_message =
        client_first_bare + "," + std::string(server_first) + "," + without_proof;
    std::string signature = hmac_sha1(stored_key, auth_message);
    std::string proof = xor_bytes(client_key, signature);
    std::string server_key = hmac_sha1(salted, "Server Key");
    server_signature_ = hmac_sha1(server_key, auth_message);
    return without_proof + ",p=" + base64_encode(proof);
}

bool ScramSha1Client::verify_server_final(std::string_view server_final) const {
    if (server_signature_.empty()) return false;
    auto v = scram_attr(server_final, 'v');
    if (!v) return false;
    auto sig = base64_decode(*v);
    return sig && *sig == server_signature_;
}

}  // namespace xs::loadgen::sasl
