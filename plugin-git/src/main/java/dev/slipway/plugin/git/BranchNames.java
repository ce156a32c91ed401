package dev.slipway.plugin.git;

import java.util.Optional;

/**
 * Git's rules for branch names ({@code git check-ref-format --branch}), checked before any clone
 * so that a name git would refuse, or read as something else, never reaches it.
 */
final class BranchNames {
  private BranchNames() {}

  /**
   * What is wrong with {@code branch}, if anything, as a phrase. The empty name is fine: it stands
   * for the remote's default branch.
   */
  static Optional<String> problem(String branch) {
    if (branch.isEmpty()) {
      return Optional.empty();
    }
    String problem = rule(branch);
    return problem == null
        ? Optional.empty()
        : Optional.of(
            problem
                + "; use a name git accepts, such as main or release/1.2, or leave it empty for"
                + " the default branch");
  }

  private static String rule(String branch) {
    if (branch.startsWith("-")) {
      return "must not start with '-' (git would read it as an option)";
    }
    if (branch.equals("@") || branch.equals("HEAD")) {
      return "'" + branch + "' names HEAD, not a branch";
    }
    for (int i = 0; i < branch.length(); i++) {
      char c = branch.charAt(i);
      if (c < 0x20 || c == 0x7f) {
        return "must not contain control characters";
      }
      if (c == ' ' || "~^:?*[\\".indexOf(c) >= 0) {
        return "must not contain spaces or any of ~ ^ : ? * [ \\";
      }
    }
    if (branch.contains("..")) {
      return "must not contain '..'";
    }
    if (branch.contains("@{")) {
      return "must not contain '@{'";
    }
    if (branch.startsWith("/") || branch.endsWith("/") || branch.contains("//")) {
      return "must not start or end with '/' or contain '//'";
    }
    if (branch.endsWith(".")) {
      return "must not end with '.'";
    }
    for (String component : branch.split("/")) {
      if (component.startsWith(".")) {
        return "no part between slashes may start with '.'";
      }
      if (component.endsWith(".lock")) {
        return "no part between slashes may end with '.lock'";
      }
    }
    return null;
  }
}
