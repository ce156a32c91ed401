package dev.slipway.worker.e2e;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.tngtech.archunit.base.DescribedPredicate;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.domain.JavaFieldAccess;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.library.GeneralCodingRules;
import io.grpc.Status;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The layering that keeps the SPI small and the plugins swappable. */
class ArchitectureTest {
  static JavaClasses classes;

  @BeforeAll
  static void importClasses() {
    classes = new ClassFileImporter()
        .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
        .importPackages("dev.slipway");
  }

  @Test
  void theBundledPluginsAreImported() {
    // The plugin rules allow an empty "should": without the plugins they would pass vacuously.
    for (String plugin : List.of("git", "buildkit", "ecr", "dockerpush")) {
      assertTrue(classes.containPackage("dev.slipway.plugin." + plugin), plugin);
    }
  }

  @Test
  void workerApiDependsOnNothingButTheJdkAndTypesafeConfig() {
    classes().that().resideInAPackage("dev.slipway.worker.api..")
        .should().onlyDependOnClassesThat()
        .resideInAnyPackage("java..", "com.typesafe.config..", "dev.slipway.worker.api..")
        .check(classes);
  }

  @Test
  void protoTypesDoNotLeakIntoTheApi() {
    noClasses().that().resideInAPackage("dev.slipway.worker.api..")
        .should().dependOnClassesThat().resideInAPackage("dev.slipway.proto..")
        .check(classes);
  }

  @Test
  void pluginsNeverDependOnTheRuntimeOrTheContract() {
    noClasses().that().resideInAPackage("dev.slipway.plugin..")
        .should().dependOnClassesThat()
        .resideInAnyPackage("dev.slipway.worker.runtime..", "dev.slipway.proto..")
        .allowEmptyShould(true)
        .check(classes);
  }

  @Test
  void pluginsNeverDependOnEachOther() {
    slices().matching("dev.slipway.plugin.(*)..").should().notDependOnEachOther()
        .allowEmptyShould(true)
        .check(classes);
  }

  @Test
  void sdkTypesStayInsideTheirPlugin() {
    noClasses().that().resideOutsideOfPackage("dev.slipway.plugin..")
        .should().dependOnClassesThat().resideInAnyPackage(
            "org.eclipse.jgit..", "com.github.dockerjava..", "software.amazon.awssdk..")
        .check(classes);
  }

  @Test
  void onlyErrorMappingTurnsFailuresIntoGrpcStatuses() {
    noClasses().that().resideInAPackage("dev.slipway.worker.runtime..")
        .and().doNotHaveFullyQualifiedName(
            "dev.slipway.worker.runtime.errors.ErrorMapping")
        .should().accessTargetWhere(DescribedPredicate.describe("a constant of io.grpc.Status",
            access -> access instanceof JavaFieldAccess
                && access.getTargetOwner().isEquivalentTo(Status.class)))
        .check(classes);
  }

  @Test
  void theRuntimeDoesNotDependOnTheTestKit() {
    noClasses().that().resideInAPackage("dev.slipway.worker.runtime..")
        .should().dependOnClassesThat().resideInAPackage("dev.slipway.worker.testkit..")
        .check(classes);
  }

  @Test
  void nothingWritesToStandardStreamsButTheLoggingSetupAndTheCommandLine() {
    noClasses().that().resideInAPackage("dev.slipway..")
        .and().doNotHaveFullyQualifiedName("dev.slipway.worker.runtime.logging.Logging")
        .and().doNotHaveFullyQualifiedName("dev.slipway.worker.runtime.cli.WorkerCli")
        .should(GeneralCodingRules.ACCESS_STANDARD_STREAMS)
        .check(classes);
  }

  @Test
  void packagesAreFreeOfCycles() {
    slices().matching("dev.slipway.worker.runtime.(*)..").should().beFreeOfCycles()
        .check(classes);
  }
}
