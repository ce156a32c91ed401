package dev.slipway.plugin.git;

import java.util.Optional;

/**
 * Git's rules for branch names ({@code git check-ref-format --branch}) and full ref names ({@code
 * git check-ref-format refs/...}), checked before any clone so that a name git would refuse, or
 * read as something else (an option, a revision expression, a refspec), never reaches it.
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

  /**
   * What is wrong with the full ref name {@code ref}, if anything, as a phrase: it must start with
   * {@code refs/} and pass {@code git check-ref-format}. The empty name is fine: no ref asked for.
   */
  static Optional<String> refProblem(String ref) {
    if (ref.isEmpty()) {
      return Optional.empty();
    }
    String problem =
        ref.startsWith("refs/") ? rule(ref) : "must be a full ref name starting with 'refs/'";
    return problem == null
        ? Optional.empty()
        : Optional.of(
            problem
                + "; use a full ref name git accepts, such as refs/tags/v1.2, refs/pull/42/merge"
                + " or refs/heads/main");
  }

  /** check-ref-format's rules, shared by branch names and full ref names; null when it passes. */
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
