import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.regex.Pattern;
import java.util.zip.ZipEntry;

/**
 * Verifies each signed jar given, then rewrites it without its signature: the same entries with
 * the same bytes, minus META-INF/*.SF, *.RSA, *.DSA, *.EC and the manifest's per-entry digests.
 * Unsigned jars are left alone. Run by build-image.sh as a single-file program:
 *
 * <pre>java dist/src/StripSignatures.java JAR...</pre>
 *
 * <p>Why: the JVM checks a signed jar again on every start and every class it reads from it (the
 * signature block, then a SHA-256 of each entry against a manifest that lists every entry: 800 KB
 * for BouncyCastle), which was the largest part of loading the plugin folders. Nothing in the
 * worker uses the signers. The check happens once here instead: a jar whose entries do not match
 * its signature fails the build.
 */
public final class StripSignatures {
  private static final Pattern SIGNATURE_FILE =
      Pattern.compile("META-INF/[^/]+\\.(SF|RSA|DSA|EC)", Pattern.CASE_INSENSITIVE);

  public static void main(String[] args) throws IOException {
    int stripped = 0;
    for (String arg : args) {
      Path jar = Path.of(arg);
      if (strip(jar)) {
        System.out.println("build-image: verified and unsigned " + jar.getFileName());
        stripped++;
      }
    }
    System.out.println("build-image: " + stripped + " signed jar(s) of " + args.length);
  }

  /** Returns false, changing nothing, for a jar without a signature. */
  static boolean strip(Path jar) throws IOException {
    Path temp;
    try (JarFile in = new JarFile(jar.toFile(), true)) {
      List<JarEntry> entries = in.stream().toList();
      if (entries.stream().noneMatch(e -> SIGNATURE_FILE.matcher(e.getName()).matches())) {
        return false;
      }
      Manifest manifest = in.getManifest();
      Manifest main = new Manifest();
      main.getMainAttributes().putAll(manifest.getMainAttributes());
      if (main.getMainAttributes().getValue(Attributes.Name.MANIFEST_VERSION) == null) {
        main.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
      }
      temp = Files.createTempFile(jar.getParent(), ".unsigned-", ".jar");
      try (OutputStream file = Files.newOutputStream(temp);
          JarOutputStream out = new JarOutputStream(file, main)) {
        for (JarEntry entry : entries) {
          String name = entry.getName();
          if (name.equalsIgnoreCase(JarFile.MANIFEST_NAME)
              || SIGNATURE_FILE.matcher(name).matches()) {
            continue;
          }
          // Reading the whole entry is what makes JarFile check its digest (SecurityException).
          byte[] bytes = readAll(in, entry);
          if (!entry.isDirectory() && !name.startsWith("META-INF/")
              && entry.getCodeSigners() == null) {
            throw new IOException(jar + ": " + name + " is not covered by the jar's signature");
          }
          ZipEntry copy = new ZipEntry(name);
          copy.setTime(entry.getTime());
          out.putNextEntry(copy);
          out.write(bytes);
          out.closeEntry();
        }
      } catch (IOException | RuntimeException e) {
        Files.deleteIfExists(temp);
        throw e;
      }
    } catch (SecurityException e) {
      throw new IOException(jar + " does not match its signature: " + e.getMessage(), e);
    }
    Files.move(temp, jar, StandardCopyOption.REPLACE_EXISTING);
    return true;
  }

  private static byte[] readAll(JarFile jar, JarEntry entry) throws IOException {
    try (InputStream in = jar.getInputStream(entry)) {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      in.transferTo(bytes);
      return bytes.toByteArray();
    }
  }

  private StripSignatures() {}
}
