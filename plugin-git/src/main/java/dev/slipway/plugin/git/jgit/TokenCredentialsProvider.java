package dev.slipway.plugin.git.jgit;

import java.util.Locale;
import org.eclipse.jgit.errors.UnsupportedCredentialItem;
import org.eclipse.jgit.transport.CredentialItem;
import org.eclipse.jgit.transport.CredentialsProvider;
import org.eclipse.jgit.transport.URIish;

/**
 * Answers JGit's request for credentials with user {@code x-access-token} and the job's token, as
 * GitHub expects, and only for the repository's own scheme, host and port: a submodule on
 * another host never sees the token. Nothing is stored, so nothing reaches {@code .git/config}.
 */
final class TokenCredentialsProvider extends CredentialsProvider {
  static final String USER = "x-access-token";

  private final URIish origin;
  private final char[] token;

  TokenCredentialsProvider(URIish origin, String token) {
    this.origin = origin;
    this.token = token.toCharArray();
  }

  @Override
  public boolean isInteractive() {
    return false;
  }

  @Override
  public boolean supports(CredentialItem... items) {
    for (CredentialItem item : items) {
      if (!(item instanceof CredentialItem.Username) && !(item instanceof CredentialItem.Password)) {
        return false;
      }
    }
    return true;
  }

  @Override
  public boolean get(URIish uri, CredentialItem... items) throws UnsupportedCredentialItem {
    if (!sameOrigin(uri)) {
      return false;
    }
    for (CredentialItem item : items) {
      if (item instanceof CredentialItem.Username username) {
        username.setValue(USER);
      } else if (item instanceof CredentialItem.Password password) {
        password.setValue(token.clone());
      } else {
        throw new UnsupportedCredentialItem(uri, item.getClass().getSimpleName());
      }
    }
    return true;
  }

  private boolean sameOrigin(URIish uri) {
    return uri != null
        && lower(uri.getScheme()).equals(lower(origin.getScheme()))
        && lower(uri.getHost()).equals(lower(origin.getHost()))
        && port(uri) == port(origin);
  }

  private static int port(URIish uri) {
    if (uri.getPort() > 0) {
      return uri.getPort();
    }
    return "https".equals(lower(uri.getScheme())) ? 443 : 80;
  }

  private static String lower(String s) {
    return s == null ? "" : s.toLowerCase(Locale.ROOT);
  }
}
