package dev.slipway.plugin.buildkit;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class RepoUrlsTest {

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "https://github.com/team/app.git | https://github.com/team/app.git",
        "https://x-access-token:ghp_abc@github.com/team/app.git | https://github.com/team/app.git",
        "https://user@github.com/team/app | https://github.com/team/app",
        "http://u:p%40ss@127.0.0.1:8080/repo.git?token=abc#frag | http://127.0.0.1:8080/repo.git",
        "https://u:p@ss@host/r | https://host/r",
        "https://u:with space@host/r | https://host/r",
        "git@github.com:team/app.git | git@github.com:team/app.git",
      })
  void dropsCredentialsQueryAndFragment(String url, String expected) {
    assertEquals(expected, RepoUrls.withoutCredentials(url));
  }
}
