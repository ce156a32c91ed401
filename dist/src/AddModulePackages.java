import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassTransform;
import java.lang.classfile.attribute.ModulePackagesAttribute;
import java.lang.constant.PackageDesc;
import java.lang.module.ModuleDescriptor;
import java.lang.module.ModuleFinder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/**
 * Gives each modular jar whose module-info.class lacks a ModulePackages attribute one, holding
 * exactly the packages the JVM finds in the jar itself (ModuleFinder's own answer, on the JDK the
 * image carries). Nothing else in the jar changes. Run by build-image.sh as a single-file program
 * on a JDK 24 or later (the ClassFile API), after StripSignatures:
 *
 * <pre>java dist/src/AddModulePackages.java JAR...</pre>
 *
 * <p>Why: without the attribute the JVM lists every entry of the jar to find its packages each
 * time it reads the module's descriptor, which it does for every plugin folder at every start.
 * javac does not write the attribute (jlink and the jar tool do, but the jar tool refuses
 * BouncyCastle's and Jackson's multi-release layouts). For docker-push's folder (BouncyCastle,
 * Guava, Jackson: about 12,000 entries) that listing was most of its load time.
 */
public final class AddModulePackages {
  public static void main(String[] args) throws IOException {
    int added = 0;
    for (String arg : args) {
      if (add(Path.of(arg))) {
        added++;
      }
    }
    System.out.println("build-image: ModulePackages added to " + added + " modular jar(s) of "
        + args.length);
  }

  /** Returns false, changing nothing, for an automatic module or one that has the attribute. */
  static boolean add(Path jar) throws IOException {
    String entryName;
    byte[] descriptor;
    // The descriptor the JVM reads: the versioned one for this JDK, if the jar has versions.
    try (JarFile in = new JarFile(jar.toFile(), false, ZipFile.OPEN_READ, Runtime.version())) {
      JarEntry entry = in.getJarEntry("module-info.class");
      if (entry == null) {
        return false;
      }
      entryName = entry.getRealName();
      try (InputStream bytes = in.getInputStream(entry)) {
        descriptor = bytes.readAllBytes();
      }
    }
    var model = ClassFile.of().parse(descriptor);
    if (model.findAttribute(java.lang.classfile.Attributes.modulePackages()).isPresent()) {
      return false;
    }
    ModuleDescriptor found = ModuleFinder.of(jar).findAll().iterator().next().descriptor();
    List<PackageDesc> packages = found.packages().stream().sorted().map(PackageDesc::of).toList();
    byte[] updated = ClassFile.of().transformClass(model,
        ClassTransform.endHandler(b -> b.with(ModulePackagesAttribute.ofNames(packages))));

    Path temp = Files.createTempFile(jar.getParent(), ".packages-", ".jar");
    try (ZipFile in = new ZipFile(jar.toFile());
        OutputStream file = Files.newOutputStream(temp);
        ZipOutputStream out = new ZipOutputStream(file)) {
      for (ZipEntry entry : in.stream().toList()) {
        ZipEntry copy = new ZipEntry(entry.getName());
        copy.setTime(entry.getTime());
        out.putNextEntry(copy);
        if (entry.getName().equals(entryName)) {
          out.write(updated);
        } else {
          try (InputStream bytes = in.getInputStream(entry)) {
            bytes.transferTo(out);
          }
        }
        out.closeEntry();
      }
    } catch (IOException | RuntimeException e) {
      Files.deleteIfExists(temp);
      throw e;
    }
    Files.move(temp, jar, StandardCopyOption.REPLACE_EXISTING);
    // What the JVM now reads must be what it found before.
    ModuleDescriptor now = ModuleFinder.of(jar).findAll().iterator().next().descriptor();
    if (!now.equals(found) || !now.packages().equals(found.packages())) {
      throw new IOException(jar + ": the descriptor changed while adding ModulePackages");
    }
    return true;
  }

  private AddModulePackages() {}
}
