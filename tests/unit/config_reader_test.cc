#include "common/core/config_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace meshflow {
namespace {

using ::testing::HasSubstr;

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(ParseDuration, PrometheusStyle) {
  EXPECT_EQ(ParseDuration("1s"), std::chrono::seconds(1));
  EXPECT_EQ(ParseDuration("250us"), std::chrono::microseconds(250));
  EXPECT_EQ(ParseDuration("1m30s"), std::chrono::seconds(90));
  EXPECT_EQ(ParseDuration("0"), std::chrono::seconds(0));
  EXPECT_FALSE(ParseDuration("5"));
  EXPECT_FALSE(ParseDuration("5 s"));
  EXPECT_FALSE(ParseDuration("-1s"));
  EXPECT_FALSE(ParseDuration("1fortnight"));
}

TEST(ConfigNode, SyntaxErrorNamesFileAndLine) {
  EXPECT_THAT(ErrorOf([] { ConfigNode::Parse("a: 1\nb: [\n", "x.yaml"); }), HasSubstr("x.yaml:3:"));
}

TEST(ConfigNode, UnknownKeyNamesKeyLineAndChoices) {
  auto root = ConfigNode::Parse("good: 1\nbda: 2\n", "c.yaml");
  const auto msg = ErrorOf([&] { root.ExpectMap({"good", "bad"}); });
  EXPECT_THAT(msg, HasSubstr("c.yaml:2:1: field bda"));
  EXPECT_THAT(msg, HasSubstr("good, bad"));
}

TEST(ConfigNode, ComplexKeyIsAConfigErrorNotACrash) {
  auto root = ConfigNode::Parse("tls:\n  ? [a, b]\n  : 1\n", "c.yaml");
  const auto msg = ErrorOf([&] { root.Require("tls").ExpectMap({"cert_file"}); });
  EXPECT_THAT(msg, HasSubstr("c.yaml:2:"));
  EXPECT_THAT(msg, HasSubstr("expected a plain key, got a list"));
}

TEST(ConfigNode, WrongTypeNamesNestedPath) {
  auto root = ConfigNode::Parse("list:\n  - {port: 70000}\n", "c.yaml");
  const auto msg =
      ErrorOf([&] { root.Require("list").Items()[0].Require("port").AsInt(1, 65535); });
  EXPECT_THAT(msg, HasSubstr("c.yaml:2:"));
  EXPECT_THAT(msg, HasSubstr("field list[0].port"));
  EXPECT_THAT(msg, HasSubstr("from 1 to 65535"));
  EXPECT_THAT(msg, HasSubstr("got \"70000\""));
}

TEST(ConfigNode, MissingRequiredKeyPointsAtParent) {
  auto root = ConfigNode::Parse("x: 1\nnode:\n  other: 2\n", "c.yaml");
  const auto msg = ErrorOf([&] { root.Require("node").Require("name"); });
  EXPECT_THAT(msg, HasSubstr("c.yaml:3:"));
  EXPECT_THAT(msg, HasSubstr("field node.name: expected a value"));
}

TEST(ConfigNode, ScalarsAndPrefixes) {
  auto root = ConfigNode::Parse("b: true\nd: 1.5\np: 10.0.0.0/8\nbadp: 10.0.0.1/8\n", "c.yaml");
  EXPECT_TRUE(root.Require("b").AsBool());
  EXPECT_DOUBLE_EQ(root.Require("d").AsDouble(0, 2), 1.5);
  EXPECT_EQ(root.Require("p").AsPrefix().bits, 8);
  EXPECT_THAT(ErrorOf([&] { root.Require("badp").AsPrefix(); }), HasSubstr("host bits"));
  EXPECT_THAT(ErrorOf([&] { root.Require("d").AsBool(); }), HasSubstr("true or false"));
  EXPECT_THAT(ErrorOf([&] { root.Require("b").AsEnum({"x", "y"}); }), HasSubstr("one of x, y"));
}

TEST(ConfigNode, EmptySectionMeansDefaults) {
  auto root = ConfigNode::Parse("section:\n", "c.yaml");
  EXPECT_FALSE(root.Get("section"));
  EXPECT_NO_THROW(ConfigNode::Parse("", "c.yaml").ExpectMap({"a"}));
}

TEST(ValidName, OneRuleForNodeRoleAndPeerNames) {
  EXPECT_TRUE(ValidName("acer-agent"));
  EXPECT_TRUE(ValidName("ct_serv.jp-1"));
  EXPECT_TRUE(ValidName(std::string(63, 'a')));
  EXPECT_FALSE(ValidName(std::string(64, 'a')));
  EXPECT_FALSE(ValidName(""));
  EXPECT_FALSE(ValidName("-lead"));
  EXPECT_FALSE(ValidName(".lead"));
  EXPECT_FALSE(ValidName("has space"));
  EXPECT_FALSE(ValidName("quote\""));
  auto root = ConfigNode::Parse("n: -bad\n", "c.yaml");
  EXPECT_THAT(ErrorOf([&] { root.Require("n").AsName("node name"); }),
              HasSubstr("c.yaml:1:4: field n: expected a node name of 1 to 63 letters"));
}

// `depth` block mappings, one per line, each indented one column more than its parent.
std::string NestedMappings(int depth) {
  std::string text;
  for (int i = 0; i < depth; ++i) text += std::string(static_cast<size_t>(i), ' ') + "a:\n";
  return text;
}

TEST(ConfigNode, NestingPastTheCapIsALocatedError) {
  // a: a: ... a: with 64 mappings (the last one's value is null) is as deep as allowed.
  EXPECT_NO_THROW(ConfigNode::Parse(NestedMappings(kMaxConfigDepth), "n.yaml"));
  EXPECT_THAT(ErrorOf([] { ConfigNode::Parse(NestedMappings(kMaxConfigDepth + 1), "n.yaml"); }),
              HasSubstr("n.yaml:65:65: invalid config: lists and mappings nested more than 64"));
  const std::string flow = std::string(100'000, '[') + std::string(100'000, ']');
  EXPECT_THAT(ErrorOf([&] { ConfigNode::Parse("x: " + flow + "\n", "f.yaml"); }),
              HasSubstr("f.yaml:1:67: invalid config"));
  // Compact block lists ("- - - 1") nest one level per two characters, so depth costs no
  // indentation.
  std::string compact;
  for (int i = 0; i < 100'000; ++i) compact += "- ";
  EXPECT_THAT(ErrorOf([&] { ConfigNode::Parse(compact + "1\n", "c.yaml"); }),
              HasSubstr("c.yaml:1:129: invalid config"));
}

}  // namespace
}  // namespace meshflow
