#include <gtest/gtest.h>

#include <map>

#include "gateway/federate.h"
#include "gateway/selector.h"

namespace meshflow::gateway {
namespace {

bool Matches(const Selector& s, std::map<std::string, std::string> labels) {
  return s.Matches([&](std::string_view name) -> std::string_view {
    auto it = labels.find(std::string(name));
    return it == labels.end() ? std::string_view() : std::string_view(it->second);
  });
}

Selector Parse(std::string_view text) {
  std::string why;
  auto s = ParseSelector(text, &why);
  EXPECT_TRUE(s) << text << ": " << why;
  return s.value_or(Selector{});
}

TEST(Selector, BareMetricName) {
  const auto s = Parse("up");
  EXPECT_TRUE(Matches(s, {{"__name__", "up"}}));
  EXPECT_FALSE(Matches(s, {{"__name__", "up2"}}));
}

TEST(Selector, AllFourOperators) {
  const auto s = Parse(R"(m{job="node", instance!="a", path=~"/v[0-9]+", mode!~"idle|iowait"})");
  ASSERT_EQ(s.matchers.size(), 5u);
  std::map<std::string, std::string> l{
      {"__name__", "m"}, {"job", "node"}, {"instance", "b"}, {"path", "/v2"}, {"mode", "user"}};
  EXPECT_TRUE(Matches(s, l));
  l["instance"] = "a";
  EXPECT_FALSE(Matches(s, l));
  l["instance"] = "b";
  l["path"] = "/v2/x";  // regexes are anchored at both ends
  EXPECT_FALSE(Matches(s, l));
  l["path"] = "/v2";
  l["mode"] = "idle";
  EXPECT_FALSE(Matches(s, l));
}

TEST(Selector, NameMatcherInsideBraces) {
  const auto s = Parse(R"({__name__=~"meshflow_.*", node="acer-agent"})");
  EXPECT_TRUE(Matches(s, {{"__name__", "meshflow_rtt"}, {"node", "acer-agent"}}));
  EXPECT_FALSE(Matches(s, {{"__name__", "node_load1"}, {"node", "acer-agent"}}));
}

TEST(Selector, AbsentLabelIsEmpty) {
  const auto s = Parse(R"(m{missing=""})");
  EXPECT_TRUE(Matches(s, {{"__name__", "m"}}));
  EXPECT_FALSE(Matches(s, {{"__name__", "m"}, {"missing", "x"}}));
}

TEST(Selector, StringQuotingAndEscapes) {
  EXPECT_EQ(Parse(R"(m{a='x"y'})").matchers[1].value, "x\"y");
  EXPECT_EQ(Parse(R"(m{a="x\"y\\z\n"})").matchers[1].value, "x\"y\\z\n");
  EXPECT_EQ(Parse("m{a=`r\\aw`}").matchers[1].value, "r\\aw");
}

TEST(Selector, RejectsMalformed) {
  for (const char* bad : {"", "{}", R"({a=~".*"})", R"({a!="x"})", "m{", R"(m{a="x")", R"(m{a=x})",
                          R"(m{a~"x"})", R"(m{1a="x"})", R"(m{a="x" b="y"})", R"(m{a=~"("})",
                          R"(m{a="\q"})", "m extra", "9m", R"(m{a="x"}})"}) {
    std::string why;
    EXPECT_FALSE(ParseSelector(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
  EXPECT_FALSE(ParseSelector(std::string(5000, 'a'), nullptr));
}

text_format::Exposition Parse2(std::string_view text) {
  text_format::Exposition e;
  auto error = text_format::ParseTextFormat(text, {}, &e);
  EXPECT_FALSE(error) << error->ToString();
  return e;
}

std::vector<Selector> Sel(std::initializer_list<const char*> texts) {
  std::vector<Selector> out;
  for (const char* t : texts) out.push_back(Parse(t));
  return out;
}

TEST(Federate, MergesNodesAddsNodeLabelAndKeepsOneHeaderPerFamily) {
  auto a = std::make_shared<text_format::Exposition>(
      Parse2("# HELP m_total Requests.\n# TYPE m_total counter\nm_total{code=\"200\"} 5\n"
             "# TYPE g gauge\ng 1\n"));
  auto b = std::make_shared<text_format::Exposition>(
      Parse2("# TYPE m_total counter\nm_total{code=\"500\"} 2\nother 7\n"));
  FederateStats stats;
  const std::string out =
      Federate({{"acer-agent", a}, {"ct-serv-jp", b}}, Sel({"m_total", "other"}), &stats);
  EXPECT_EQ(out,
            "# HELP m_total Requests.\n# TYPE m_total counter\n"
            "m_total{code=\"200\",node=\"acer-agent\"} 5\n"
            "m_total{code=\"500\",node=\"ct-serv-jp\"} 2\n"
            "# TYPE other untyped\nother{node=\"ct-serv-jp\"} 7\n");
  EXPECT_EQ(stats.samples_out, 3u);
  // The merged body is valid text format itself.
  EXPECT_FALSE(text_format::ParseTextFormat(out, {}, nullptr));
}

TEST(Federate, FiltersByNodeAndLabelMatchers) {
  auto a = std::make_shared<text_format::Exposition>(Parse2("m{job=\"x\"} 1\nm{job=\"y\"} 2\n"));
  auto b = std::make_shared<text_format::Exposition>(Parse2("m{job=\"x\"} 3\n"));
  const auto out =
      Federate({{"n1", a}, {"n2", b}}, Sel({R"({__name__="m",job="x",node!="n2"})"}), nullptr);
  EXPECT_EQ(out, "# TYPE m untyped\nm{job=\"x\",node=\"n1\"} 1\n");
}

TEST(Federate, ExistingNodeLabelBecomesExportedNode) {
  auto a = std::make_shared<text_format::Exposition>(Parse2("m{node=\"inner\",z=\"1\"} 1\n"));
  const auto out = Federate({{"outer", a}}, Sel({"m"}), nullptr);
  EXPECT_EQ(out, "# TYPE m untyped\nm{exported_node=\"inner\",z=\"1\",node=\"outer\"} 1\n");
  EXPECT_EQ(Federate({{"outer", a}}, Sel({R"(m{exported_node="inner"})"}), nullptr), out);
}

TEST(Federate, TypeConflictSkipsTheLaterNodesFamily) {
  auto a = std::make_shared<text_format::Exposition>(Parse2("# TYPE m counter\nm 1\n"));
  auto b = std::make_shared<text_format::Exposition>(Parse2("# TYPE m gauge\nm 2\n"));
  FederateStats stats;
  const auto out = Federate({{"a", a}, {"b", b}}, Sel({"m"}), &stats);
  EXPECT_EQ(out, "# TYPE m counter\nm{node=\"a\"} 1\n");
  EXPECT_EQ(stats.type_conflicts, 1u);
}

TEST(Federate, NodesWithoutExpositionAndNoMatchGiveEmptyBody) {
  auto a = std::make_shared<text_format::Exposition>(Parse2("m 1\n"));
  EXPECT_EQ(Federate({{"a", nullptr}, {"b", a}}, Sel({"nothing"}), nullptr), "");
}

TEST(Federate, HistogramStaysTogetherAcrossNodes) {
  const char* h =
      "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n";
  auto a = std::make_shared<text_format::Exposition>(Parse2(h));
  auto b = std::make_shared<text_format::Exposition>(Parse2(h));
  const auto out = Federate({{"a", a}, {"b", b}}, Sel({R"({__name__=~"h_.*"})"}), nullptr);
  text_format::Exposition merged;
  ASSERT_FALSE(text_format::ParseTextFormat(out, {}, &merged)) << out;
  ASSERT_EQ(merged.families.size(), 1u);
  EXPECT_EQ(merged.families[0].samples.size(), 8u);
}

}  // namespace
}  // namespace meshflow::gateway
