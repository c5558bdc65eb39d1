#include "proxy/routing/routing_cookie.h"

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <vector>

#include "tests/proxy/test_files.h"

namespace stickyproxy {
namespace {

using testing::readFile;
using testing::TempDir;
using testing::writeFile;

const std::string kSecret = "0123456789abcdef0123456789abcdef-test-secret";
const std::string kKey = "00112233445566778899aabbccddeeff";

TEST_CASE("cookie values match the documented format (known answers from an independent HMAC)", "[routing][cookie]") {
  CookieSigner signer({kSecret});
  // Python: hmac.new(secret, "stickyproxy-route-1\n" K "\n" W "\n" T, sha256).hexdigest()[:32]
  CHECK(signer.encode({kKey, std::nullopt}) == kKey + ".e8d4f0b42ded644119d8a31ed9923544");
  CHECK(signer.encode({kKey, CookiePin{"w2", 0x65f0c2a1}}) ==
        kKey + ".w2.65f0c2a1.51ac6ba1f8accb095227f1432a854572");
}

TEST_CASE("a signed cookie decodes to its key and pin", "[routing][cookie]") {
  CookieSigner signer({kSecret});
  for (std::optional<CookiePin> pin : {std::optional<CookiePin>(), std::optional<CookiePin>(CookiePin{"w-3_x", 0}),
                                       std::optional<CookiePin>(CookiePin{"w1", 1764900000})}) {
    RoutingCookie out;
    REQUIRE(signer.decode(signer.encode({kKey, pin}), &out) == CookieCheck::kSigned);
    CHECK(out.key == kKey);
    CHECK(out.pin == pin);
    // The copy-free form reads the same, as views into the value.
    const std::string value = signer.encode({kKey, pin});
    RoutingCookieView view;
    REQUIRE(signer.decode(value, &view) == CookieCheck::kSigned);
    CHECK(view.key == kKey);
    CHECK(view.pinned == pin.has_value());
    if (pin) {
      CHECK(view.pin_worker == pin->worker);
      CHECK(view.pin_since_s == pin->since_s);
    }
    CHECK(view.key.data() == value.data());
  }
}

TEST_CASE("any change to a signed cookie makes it forged or malformed, never accepted", "[routing][cookie]") {
  CookieSigner signer({kSecret});
  const std::string value = signer.encode({kKey, CookiePin{"w2", 1764900000}});
  for (size_t i = 0; i < value.size(); ++i) {
    for (char replacement : {'0', 'f', 'a', '.', 'W', '-'}) {
      if (value[i] == replacement) continue;
      std::string changed = value;
      changed[i] = replacement;
      RoutingCookie out;
      INFO(changed);
      CookieCheck check = signer.decode(changed, &out);
      CHECK((check == CookieCheck::kForged || check == CookieCheck::kMalformed));
    }
  }
  // A pin moved onto another key, or another worker spliced in, does not verify.
  RoutingCookie out;
  CHECK(signer.decode("ffffffffffffffffffffffffffffffff" + value.substr(32), &out) == CookieCheck::kForged);
  CHECK(signer.decode(kKey + ".w3" + value.substr(35), &out) == CookieCheck::kForged);
  // Another secret's cookies are forged here.
  CookieSigner other({kSecret + "-other"});
  CHECK(other.decode(value, &out) == CookieCheck::kForged);
}

TEST_CASE("verified values are cached: a repeat decodes alike, and nothing near a cached value passes", "[routing][cookie]") {
  CookieSigner signer({kSecret});
  const std::string value = signer.encode({kKey, CookiePin{"w2", 1764900000}});
  RoutingCookie out;
  for (int round = 0; round < 3; ++round) {
    out = {};
    REQUIRE(signer.decode(value, &out) == CookieCheck::kSigned);
    CHECK(out.key == kKey);
    CHECK(out.pin == CookiePin{"w2", 1764900000});
  }
  // With the genuine value cached, each change is still refused, every time it is tried.
  for (size_t i = 0; i < value.size(); ++i) {
    std::string changed = value;
    changed[i] = changed[i] == 'f' ? 'e' : 'f';
    for (int round = 0; round < 2; ++round) {
      INFO(changed);
      CookieCheck check = signer.decode(changed, &out);
      CHECK((check == CookieCheck::kForged || check == CookieCheck::kMalformed));
    }
  }
  CHECK(signer.decode(value.substr(0, value.size() - 1), &out) == CookieCheck::kMalformed);
  // More sessions than the cache has slots: each still decodes to its own key, first time or not.
  std::vector<std::string> values;
  for (int n = 0; n < 3000; ++n) {
    char key[33];
    std::snprintf(key, sizeof key, "%032x", n);
    values.push_back(signer.encode({key, std::nullopt}));
  }
  for (int round = 0; round < 2; ++round) {
    for (size_t n = 0; n < values.size(); ++n) {
      REQUIRE(signer.decode(values[n], &out) == CookieCheck::kSigned);
      REQUIRE(out.key == values[n].substr(0, 32));
      REQUIRE_FALSE(out.pin);
    }
  }
  // A signer under another secret has a cache of its own.
  CHECK(CookieSigner({kSecret + "-other"}).decode(value, &out) == CookieCheck::kForged);
}

TEST_CASE("values of neither shape are malformed, and a bare key is the unsigned legacy format", "[routing][cookie]") {
  CookieSigner signer({kSecret});
  RoutingCookie out;
  CHECK(signer.decode(kKey, &out) == CookieCheck::kLegacy);
  CHECK(out.key == kKey);
  CHECK_FALSE(out.pin);
  const std::string mac(32, 'a');
  for (const std::string& bad :
       {std::string(), std::string("."), kKey + ".", kKey + "." + mac + ".", kKey + ".w1." + mac,
        kKey + ".w1.1.2." + mac, kKey.substr(1) + "." + mac, kKey + "." + mac.substr(1), kKey + ".w1.01." + mac,
        kKey + "..1." + mac, kKey + ".w1.." + mac, kKey + ".w 1.1." + mac, kKey + ".w1.g." + mac,
        kKey + ".w1.10000000000000000." + mac, kKey + "." + std::string(33, 'w') + ".1." + mac,
        std::string("00112233445566778899AABBCCDDEEFF.") + mac}) {
    INFO(bad);
    CHECK(signer.decode(bad, &out) == CookieCheck::kMalformed);
  }
}

TEST_CASE("every secret verifies and the first signs, so a secret can be rotated", "[routing][cookie]") {
  CookieSigner old_signer({"old-secret-old-secret-old-secret-1"});
  CookieSigner rotating({"new-secret-new-secret-new-secret-2", "old-secret-old-secret-old-secret-1"});
  RoutingCookie out;
  CHECK(rotating.decode(old_signer.encode({kKey, CookiePin{"w1", 5}}), &out) == CookieCheck::kSigned);
  std::string fresh = rotating.encode({kKey, std::nullopt});
  CHECK(old_signer.decode(fresh, &out) == CookieCheck::kForged);
  CHECK(CookieSigner({"new-secret-new-secret-new-secret-2"}).decode(fresh, &out) == CookieCheck::kSigned);
}

TEST_CASE("the secret file is made with mode 0600 when missing and read back the same", "[routing][cookie]") {
  TempDir dir;
  const std::string path = dir.path() + "/routing-secret";
  std::string error;
  auto made = loadCookieSecrets(path, true, &error);
  REQUIRE(made);
  REQUIRE(made->size() == 1);
  CHECK(made->front().size() == 64);
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);
  auto again = loadCookieSecrets(path, true, &error);
  REQUIRE(again);
  CHECK(*again == *made);
  CHECK_FALSE(loadCookieSecrets(dir.path() + "/absent", false, &error));
}

TEST_CASE("a secret file others may read, a short secret or an empty file is refused", "[routing][cookie]") {
  TempDir dir;
  const std::string path = dir.path() + "/secret";
  std::string error;
  writeFile(path, "# rotated 2026-12-05\n" + kSecret + "\n\n" + kSecret + "-older\n");
  ::chmod(path.c_str(), 0600);
  auto secrets = loadCookieSecrets(path, false, &error);
  REQUIRE(secrets);
  CHECK(*secrets == std::vector<std::string>{kSecret, kSecret + "-older"});

  ::chmod(path.c_str(), 0640);
  CHECK_FALSE(loadCookieSecrets(path, false, &error));
  CHECK(error.find("chmod 600") != std::string::npos);

  writeFile(path, "too-short\n");
  ::chmod(path.c_str(), 0600);
  CHECK_FALSE(loadCookieSecrets(path, false, &error));
  CHECK(error.find(":1:") != std::string::npos);
  writeFile(path, "# only a comment\n");
  CHECK_FALSE(loadCookieSecrets(path, false, &error));
}

}  // namespace
}  // namespace stickyproxy
