#pragma once

#include <string>
#include <vector>

#include "tests/testbed/emulator/overlay.h"

namespace meshflow::testbed {

// The reply to one control command.
struct ControlReply {
  bool ok = false;
  std::string text;  // ends with a newline
};

// Runs one command of the control protocol (the argv of meshflow-overlay-ctl after its own
// options) against the overlay. Never throws; bad input is a reply with ok == false.
//   show | stats
//   cut A B [--one-way]        restore A B [--one-way]
//   down A | up A              take a node off the overlay and back
//   set A B [--one-way] [--rtt D | --delay D] [--jitter D] [--loss P] [--rate R]
//   reset                      topology values again, every node and link up
ControlReply ExecuteCommand(Overlay& overlay, const std::vector<std::string>& argv);

// The state as text, one line per node and per directed link, stable for scripts.
std::string FormatState(const Overlay& overlay);

}  // namespace meshflow::testbed
